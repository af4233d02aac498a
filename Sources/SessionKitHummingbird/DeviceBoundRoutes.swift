#if Hummingbird && DeviceBound
public import Hummingbird
import HTTPTypes
import NIOCore
import SessionKit
public import SessionKitDeviceBound

extension RouterMethods where Context: SessionKitRequestContext {
    /// Adds the device-bound sessions' registration and refresh endpoints (`POST` at
    /// `deviceBound.registrationPath` and `deviceBound.refreshPath`), behind the session
    /// middleware. Exempt both from cross-origin protection
    /// (`crossOrigin.exemptPaths.formUnion(deviceBound.endpointPaths)`): a proof signed by
    /// the device authenticates them.
    @discardableResult
    public func addDeviceBoundRoutes(_ deviceBound: DeviceBoundSessions) -> Self {
        post(RouterPath(deviceBound.registrationPath)) { request, context in
            Response(await deviceBound.register(CarriedHeaders(fields: request.headers), session: context.session))
        }
        post(RouterPath(deviceBound.refreshPath)) { request, context in
            Response(await deviceBound.refresh(CarriedHeaders(fields: request.headers), session: context.session))
        }
        return self
    }
}

extension Response {
    init(_ answer: DeviceBindingResponse) {
        var headers = HTTPFields()
        for field in answer.headerFields {
            guard let name = HTTPField.Name(field.name.rawValue) else { continue }
            headers.append(HTTPField(name: name, value: field.value))
        }
        self.init(
            status: HTTPResponse.Status(code: answer.status), headers: headers,
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: answer.body)))
    }
}
#endif
