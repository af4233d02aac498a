#if Vapor && DeviceBound
import NIOCore
import SessionKit
public import SessionKitDeviceBound
public import Vapor

extension RoutesBuilder {
    /// Adds the device-bound sessions' registration and refresh endpoints (`POST` at
    /// `deviceBound.registrationPath` and `deviceBound.refreshPath`), behind the session
    /// middleware. Exempt both from cross-origin protection
    /// (`crossOrigin.exemptPaths.formUnion(deviceBound.endpointPaths)`): a proof signed by
    /// the device authenticates them.
    public func addDeviceBoundRoutes(_ deviceBound: DeviceBoundSessions) {
        post(Self.components(deviceBound.registrationPath)) { request async -> Response in
            Response(await deviceBound.register(CarriedHeaders(headers: request.headers), session: request.sessionKit))
        }
        post(Self.components(deviceBound.refreshPath)) { request async -> Response in
            Response(await deviceBound.refresh(CarriedHeaders(headers: request.headers), session: request.sessionKit))
        }
    }

    private static func components(_ path: String) -> [PathComponent] {
        path.split(separator: "/").map { PathComponent(stringLiteral: String($0)) }
    }
}

extension Response {
    convenience init(_ answer: DeviceBindingResponse) {
        var headers = HTTPHeaders()
        for field in answer.headerFields { headers.add(name: field.name.rawValue, value: field.value) }
        self.init(
            status: HTTPResponseStatus(statusCode: answer.status), headers: headers, body: .init(buffer: ByteBuffer(bytes: answer.body)))
    }
}
#endif
