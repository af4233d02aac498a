// What every benchmark measures with: a shop's session and the four counter routes.
public import Foundation
public import Hummingbird
public import HummingbirdAuth
public import Logging
public import SessionKit
public import SessionKitHummingbird

/// One line of a shop's cart.
public struct CartItem: Codable, Sendable {
    public var sku: String
    public var quantity: Int
    public var price: Int
}

/// What a shop keeps in a session: about 200 bytes of JSON.
public let cart = [
    CartItem(sku: "kettle-steel-1.5l", quantity: 1, price: 3_499), CartItem(sku: "filter-paper-100", quantity: 2, price: 499),
    CartItem(sku: "tea-assam-250g", quantity: 1, price: 899), CartItem(sku: "mug-stoneware", quantity: 4, price: 1_299),
]

/// A live session holding a cart of its own (not storage shared with other sessions, as
/// each visitor's cart is in an application) and a counter, an hour from its idle deadline.
public func shopSession(_ key: SessionStorageKey, now: Date) -> StoredSession {
    var own = cart
    own[0].quantity = Int.random(in: 1...9)
    return StoredSession(
        key: key, values: ["cart": SessionValue(own), "counter": SessionValue(0)], createdAt: now, lastSeenAt: now,
        idleDeadline: now + 3_600, absoluteDeadline: now + 86_400)
}

extension SessionKey where Value == Int {
    public static var counter: SessionKey<Int> { SessionKey("counter") }
}

/// A router with SessionKit and the routes every server measures: GET /untouched (ignores
/// the session), /create (stores a counter), /read (reads it), /write (stores it + 1).
public func counterRouter(manager: SessionManager) -> Router<BasicSessionKitRequestContext> {
    let router = Router(context: BasicSessionKitRequestContext.self)
    router.add(middleware: SessionKitMiddleware(manager: manager))
    router.get("/untouched") { _, _ in "ok" }
    router.get("/create") { _, context -> String in
        try context.session.set(.counter, 0)
        return "created"
    }
    router.get("/read") { _, context -> String in "\(try await context.session.get(.counter) ?? -1)" }
    router.get("/write") { _, context -> String in
        let next = (try await context.session.get(.counter) ?? 0) + 1
        try context.session.set(.counter, next)
        return "\(next)"
    }
    return router
}

/// The same four routes on hummingbird-auth's sessions (its memory driver): the peer.
public func hummingbirdAuthRouter() -> Router<BasicSessionRequestContext<Int, String>> {
    let router = Router(context: BasicSessionRequestContext<Int, String>.self)
    router.add(middleware: SessionMiddleware(storage: MemoryPersistDriver()))
    router.get("/untouched") { _, _ in "ok" }
    router.get("/create") { _, context -> String in
        context.sessions.setSession(0)
        return "created"
    }
    router.get("/read") { _, context -> String in "\(context.sessions.session ?? -1)" }
    router.get("/write") { _, context -> String in
        let next = (context.sessions.session ?? 0) + 1
        context.sessions.setSession(next)
        return "\(next)"
    }
    return router
}

extension SessionKey where Value == [CartItem] {
    public static var cart: SessionKey<[CartItem]> { SessionKey("cart") }
}

/// The cart routes a sealed cookie is measured on: GET /create?lines=N (stores a cart of N
/// lines, the 200-byte ``cart`` when not given), /read (reads the cart), /write (changes one
/// line's quantity and stores the cart).
public func cartRouter(manager: SessionManager) -> Router<BasicSessionKitRequestContext> {
    let router = Router(context: BasicSessionKitRequestContext.self)
    router.add(middleware: SessionKitMiddleware(manager: manager))
    router.get("/create") { request, context -> String in
        let lines = request.uri.queryParameters.get("lines", as: Int.self)
        let items = lines.map { count in (0..<count).map { cart[$0 % cart.count] } } ?? cart
        try context.session.set(.cart, items)
        return "created"
    }
    router.get("/read") { _, context -> String in "\(try await context.session.get(.cart)?.count ?? -1)" }
    router.get("/write") { _, context -> String in
        var items = try await context.session.get(.cart) ?? cart
        items[0].quantity = items[0].quantity % 9 + 1
        try context.session.set(.cart, items)
        return "\(items.count)"
    }
    return router
}

/// A sealed-cookie manager for the benchmarks (a fixed secret: nothing here is private).
public func sealedManager(revocations: (any SessionStore)?, logger: Logger) throws -> SessionManager {
    let sealing = try SessionSealing(keys: [.init(id: "bench", secret: Array("a benchmark's sealing secret, 32+ bytes".utf8))])
    return try SessionManager(sealing: sealing, revocations: revocations.map(SessionRevocations.init(store:)), logger: logger)
}

/// The order in which a site's traffic visits a pool of sessions: `count` draws of a session
/// index in `0..<sessions` from a Zipf distribution with s = 1 (the k-th most popular
/// session is visited 1/k as often as the first), as `Scripts/lib/session-pool.lua` draws
/// for wrk. Drawn up front with a fixed seed, so a measured loop only looks an index up.
public func zipfOrder(sessions: Int, count: Int, seed: UInt64 = 0x5E55_10B5) -> [Int] {
    precondition(sessions > 0)
    var cumulative = [Double]()
    cumulative.reserveCapacity(sessions)
    var total = 0.0
    for rank in 1...sessions {
        total += 1 / Double(rank)
        cumulative.append(total)
    }
    var generator = SplitMix64(seed: seed)
    return (0..<count).map { _ in
        let target = Double.random(in: 0..<total, using: &generator)
        var low = 0
        var high = sessions - 1
        while low < high {
            let middle = (low + high) / 2
            if cumulative[middle] < target { low = middle + 1 } else { high = middle }
        }
        return low
    }
}

/// A small seeded generator (SplitMix64), so two configurations visit sessions in the same order.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var value = state
        value = (value ^ (value >> 30)) &* 0xBF58_476D_1CE4_E5B9
        value = (value ^ (value >> 27)) &* 0x94D0_49BB_1331_11EB
        return value ^ (value >> 31)
    }
}
