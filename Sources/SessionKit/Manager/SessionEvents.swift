public import Foundation
import Synchronization

/// Something that happened to a session.
public struct SessionEvent: Sendable, Hashable {
    /// What happened.
    public enum Kind: String, Sendable, Hashable, CaseIterable {
        /// A session was stored for the first time.
        case created
        /// A user signed in on a session.
        case authenticated
        /// A session moved to a new token.
        case rotated
        /// A session was ended by its own request (logout).
        case destroyed
        /// A session passed its deadline and was purged.
        case expired
        /// A session was signed out to keep its user within the session limit.
        case evicted
        /// A session was ended from elsewhere: by its user on another device or an admin.
        case revoked
    }

    /// What happened.
    public var kind: Kind
    /// The session's handle (never its token). For `authenticated` and `rotated`, the new one.
    public var handle: String
    /// The session's user, if one was signed in (or is named by the event).
    public var userID: String?
    /// When it happened, by the manager's clock.
    public var at: Date

    /// An event as given.
    public init(kind: Kind, handle: String, userID: String?, at: Date) {
        self.kind = kind
        self.handle = handle
        self.userID = userID
        self.at = at
    }
}

/// Hands session events to every subscriber without ever making the request path wait:
/// each subscriber has a bounded buffer that drops its oldest events when it falls
/// behind. With no subscriber, emitting costs one atomic load. Each event is also counted
/// in `sessionkit_session_events_total` (``SessionTelemetry``).
public final class SessionEvents: Sendable {
    private let subscribers = Mutex<[UInt64: AsyncStream<SessionEvent>.Continuation]>([:])
    private let subscriberCount = Atomic<Int>(0)
    private let nextID = Atomic<UInt64>(0)
    private let instruments: SessionInstruments

    init(instruments: SessionInstruments) {
        self.instruments = instruments
    }

    /// A stream of the events from now on. It buffers up to `bufferSize` events not yet
    /// read, then drops the oldest. Ends when the consuming task is cancelled or stops
    /// iterating.
    public func subscribe(bufferSize: Int = 1024) -> AsyncStream<SessionEvent> {
        let id = nextID.wrappingAdd(1, ordering: .relaxed).oldValue
        let (stream, continuation) = AsyncStream.makeStream(of: SessionEvent.self, bufferingPolicy: .bufferingNewest(bufferSize))
        continuation.onTermination = { [weak self] _ in
            guard let self else { return }
            self.subscribers.withLock { _ = $0.removeValue(forKey: id) }
            self.subscriberCount.subtract(1, ordering: .relaxed)
        }
        subscribers.withLock { $0[id] = continuation }
        subscriberCount.add(1, ordering: .relaxed)
        return stream
    }

    /// Whether anyone listens; lets callers skip building events.
    public var hasSubscribers: Bool { subscriberCount.load(ordering: .relaxed) > 0 }

    /// Counts the event (``SessionTelemetry``) and hands it to every subscriber.
    func emit(_ kind: SessionEvent.Kind, _ key: SessionStorageKey, userID: String?, at date: Date) {
        instruments.count(kind)
        guard hasSubscribers else { return }
        let event = SessionEvent(kind: kind, handle: key.handle, userID: userID, at: date)
        for continuation in subscribers.withLock({ Array($0.values) }) { continuation.yield(event) }
    }
}
