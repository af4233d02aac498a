import SessionKit

/// What the shop keeps in a session.
struct Cart: Codable, Sendable, Equatable {
    struct Line: Codable, Sendable, Equatable {
        var sku: String
        var quantity: Int
    }

    var lines: [Line] = []

    mutating func add(_ sku: String, quantity: Int) {
        if let index = lines.firstIndex(where: { $0.sku == sku }) {
            lines[index].quantity += quantity
        } else {
            lines.append(Line(sku: sku, quantity: quantity))
        }
    }

    mutating func setQuantity(_ sku: String, _ quantity: Int) {
        if quantity <= 0 {
            lines.removeAll { $0.sku == sku }
        } else if let index = lines.firstIndex(where: { $0.sku == sku }) {
            lines[index].quantity = quantity
        } else {
            lines.append(Line(sku: sku, quantity: quantity))
        }
    }

    var totalCents: Int {
        lines.reduce(0) { $0 + (Catalog.product($1.sku)?.priceCents ?? 0) * $1.quantity }
    }

    var itemCount: Int { lines.reduce(0) { $0 + $1.quantity } }
}

struct Preferences: Codable, Sendable, Equatable {
    enum Theme: String, Codable, Sendable, CaseIterable {
        case light, dark
    }

    var theme: Theme = .light
    var currency: Currency = .usd
}

extension SessionKey where Value == Cart {
    static var cart: SessionKey<Cart> { SessionKey("cart") }
}

extension SessionKey where Value == Preferences {
    static var preferences: SessionKey<Preferences> { SessionKey("preferences") }
}

extension SessionKey where Value == String {
    static var notice: SessionKey<String> { SessionKey("notice") }
}
