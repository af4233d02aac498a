public import CoreMetrics
public import Tracing

/// Where a ``SessionManager`` reports its metrics and traces.
///
/// The library never bootstraps a backend: by default it reports to whatever the
/// application bootstrapped (`MetricsSystem.bootstrap`, `InstrumentationSystem.bootstrap`)
/// before it made the manager, and with neither bootstrapped it measures nothing at all,
/// so a request pays nothing for it.
///
/// Metrics and spans carry fixed dimensions only: never a user, token, storage key or
/// address. A span names the session's handle only when ``tracesSessionHandle`` is on.
/// The names are listed in the Observability article.
public struct SessionTelemetry: Sendable {
    /// The metrics backend. Defaults to `MetricsSystem.factory` as the manager is made.
    public var metricsFactory: any MetricsFactory
    /// The tracer. Defaults to `InstrumentationSystem.tracer` as the manager is made.
    public var tracer: any Tracer
    /// Whether each store call's span carries the session's handle
    /// (`sessionkit.session.handle`), which ties a trace to one session in "your sessions"
    /// and the admin tool. Off by default. The token and storage key never appear: the
    /// token is a credential.
    public var tracesSessionHandle: Bool

    /// Reports to `metricsFactory` and `tracer`, by default the ones the application
    /// bootstrapped.
    public init(
        metricsFactory: any MetricsFactory = MetricsSystem.factory,
        tracer: any Tracer = InstrumentationSystem.tracer,
        tracesSessionHandle: Bool = false
    ) {
        self.metricsFactory = metricsFactory
        self.tracer = tracer
        self.tracesSessionHandle = tracesSessionHandle
    }
}

/// The store calls a manager makes, as metrics and spans name them (`operation`
/// dimension, `sessionkit.<operation>` span); listed in the Observability article.
enum SessionStoreCall: String, Sendable, CaseIterable {
    /// ``SessionStore/lookUp(_:now:)`` of a request's session.
    case load
    /// ``SessionStore/insert(_:now:)`` of a new session.
    case insert
    /// ``SessionStore/apply(_:to:ifVersion:now:)`` of a request's changes.
    case apply
    /// ``SessionStore/apply(_:to:ifVersion:now:)`` that only moves the idle deadline.
    case touch
    /// ``SessionStore/rotate(from:to:applying:now:rememberEndedUntil:)``.
    case rotate
    /// A sign-in: ``UserIndexedSessionStore/signIn(_:now:)``, or a rotate or insert.
    case signIn = "sign_in"
    /// ``SessionStore/delete(_:now:rememberEndedUntil:)``: logout or revocation.
    case delete
    /// ``DeviceBindingSessionStore/replaceDeviceBinding(of:expected:with:now:)``: a device
    /// registered or a challenge answered.
    case bindDevice = "bind_device"
    /// ``UserIndexedSessionStore/sessions(ofUser:now:)``.
    case listUser = "list_user"
    /// ``UserIndexedSessionStore/deleteSessions(ofUser:except:now:)``.
    case deleteUser = "delete_user"
    /// ``AdministeredSessionStore/session(withHandle:now:)``.
    case findHandle = "find_handle"
    /// ``SessionStore/purgeExpired(now:)``.
    case purge
    /// ``AdministeredSessionStore/liveSessionCount(now:)`` after a purge.
    case count
    /// A sealed session's revocation check (``SessionRevocations/endedAt(_:now:)``).
    case revocationCheck = "revocation_check"
    /// A sealed session's revocation (``SessionRevocations/revoke(_:until:now:)``, or
    /// ``SessionRevocations/keepAfterRotation(of:to:now:)``).
    case revoke
    /// A sealed manager's "sign out everywhere" (``SessionRevocations/signOut(userID:before:except:until:now:)``).
    case signOut = "sign_out"
}
