/// A typed name for one value in a session.
///
/// Declare keys as static members so handlers read `try await session.get(.cart)`:
///
/// ```swift
/// extension SessionKey where Value == Cart {
///     static var cart: SessionKey<Cart> { SessionKey("cart") }
/// }
/// ```
///
/// A key is its name plus its type. A stored value that no longer decodes as `Value`
/// (a deploy changed `Cart`) reads as absent and is logged; it never fails the request.
/// Names starting with `flash:` are reserved for flash values.
public struct SessionKey<Value: Codable & Sendable>: Sendable, Hashable, CustomStringConvertible {
    /// The name the value is stored under.
    public let name: String

    /// The key stored under `name`.
    public init(_ name: String) {
        self.name = name
    }

    /// The name a flash value of this key is stored under.
    var flashName: String { "flash:" + name }

    /// The key's name and value type.
    public var description: String { "SessionKey<\(Value.self)>(\(name))" }
}
