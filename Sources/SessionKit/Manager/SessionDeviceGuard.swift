public import Foundation
public import Logging

/// What a manager asks before a request uses a session bound to a device key (DBSC):
/// whether the request carries the proof of that binding. `SessionKitDeviceBound`'s
/// `DeviceBoundSessions` is the implementation; pass it as the manager's `deviceGuard`.
///
/// With a guard, a request whose session is bound and which does not carry that proof
/// cannot read, change, sign in on, or end the session (401 `device_binding_required`),
/// whatever carried its token; only the refresh endpoint, which proves possession of the
/// key otherwise, may load it.
public protocol SessionDeviceGuard: Sendable {
    /// The cookie that carries the proof (a short-lived bound cookie).
    var boundCookieName: String { get }

    /// Whether `credential`, the value of the request's one ``boundCookieName`` cookie
    /// (`nil` when it has none, or several), proves `binding` at `now`.
    func admits(_ binding: SessionDeviceBinding, credential: String?, now: Date) -> Bool

    /// Sees every request before its session is used, for what the request says of its
    /// binding (a browser's `Secure-Session-Skipped`, say). Must be cheap; the default does
    /// nothing.
    func inspect(_ request: any SessionCarrierRequest, logger: Logger)
}

extension SessionDeviceGuard {
    /// Nothing.
    public func inspect(_ request: any SessionCarrierRequest, logger: Logger) {}
}
