import Foundation
import SessionKit
import Synchronization

/// Slows password guessing: a token bucket per account and one per client address. Every
/// failed password check takes a token from both; a check is refused (429 with
/// `Retry-After`) while either is empty. Buckets refill one token per ``refillInterval``,
/// up to ``burst``, so a person who mistypes a few times is never stopped, and a guesser
/// gets one try per interval.
///
/// At most ``maxTracked`` buckets are kept: past that, full ones are forgotten first, then
/// the least recently used, so a flood of made-up usernames cannot grow it without bound.
final class LoginThrottle: Sendable {
    /// Failed attempts allowed at once. The default is 5.
    let burst: Double
    /// Seconds to regain one attempt. The default is 30.
    let refillInterval: TimeInterval
    let maxTracked: Int
    private let wallClock: any WallClock
    private let buckets = Mutex<[String: Bucket]>([:])

    private struct Bucket {
        var tokens: Double
        var updated: Date
    }

    init(burst: Int = 5, refillInterval: TimeInterval = 30, maxTracked: Int = 10_000, wallClock: any WallClock = SystemWallClock()) {
        self.burst = Double(burst)
        self.refillInterval = refillInterval
        self.maxTracked = maxTracked
        self.wallClock = wallClock
    }

    /// Throws a 429 while the account or the address has no attempt left.
    func admit(account: String, address: String?) throws(DemoError) {
        let now = wallClock.now()
        let wait = buckets.withLock { buckets in
            keys(account: account, address: address).map { key -> TimeInterval in
                let tokens = refilled(buckets[key], now: now).tokens
                return tokens >= 1 ? 0 : (1 - tokens) * refillInterval
            }.max() ?? 0
        }
        guard wait > 0 else { return }
        throw DemoError.tooManyAttempts(retryAfter: Int(wait.rounded(.up)))
    }

    /// Takes one attempt from the account's bucket and the address's.
    func recordFailure(account: String, address: String?) {
        let now = wallClock.now()
        buckets.withLock { buckets in
            for key in keys(account: account, address: address) {
                var bucket = refilled(buckets[key], now: now)
                bucket.tokens = max(0, bucket.tokens - 1)
                buckets[key] = bucket
            }
            if buckets.count > maxTracked { forgetSome(&buckets, now: now) }
        }
    }

    /// Bucket names; an account name is cut to 128 characters, so made-up names of any
    /// length cost the same small key.
    private func keys(account: String, address: String?) -> [String] {
        ["account:" + account.prefix(128)] + (address.map { ["address:" + $0] } ?? [])
    }

    private func refilled(_ bucket: Bucket?, now: Date) -> Bucket {
        guard let bucket else { return Bucket(tokens: burst, updated: now) }
        let gained = max(0, now.timeIntervalSince(bucket.updated)) / refillInterval
        return Bucket(tokens: min(burst, bucket.tokens + gained), updated: now)
    }

    private func forgetSome(_ buckets: inout [String: Bucket], now: Date) {
        buckets = buckets.filter { refilled($0.value, now: now).tokens < burst }
        guard buckets.count > maxTracked else { return }
        let newest = buckets.sorted { $0.value.updated > $1.value.updated }.prefix(maxTracked / 2)
        buckets = Dictionary(uniqueKeysWithValues: newest.map { ($0.key, $0.value) })
    }
}
