import SessionKit

/// What the shop keeps in a session.
struct Cart: Codable, Sendable, Equatable {
    /// The most of one product a line holds, however it is reached (one addition or many).
    static let maxLineQuantity = 99

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

    /// The quantity of `sku` in the cart.
    func quantity(of sku: String) -> Int { lines.first { $0.sku == sku }?.quantity ?? 0 }

    /// The total in cents. Lines are capped and products are few, so it cannot overflow;
    /// it saturates rather than trap should a stored cart ever say otherwise.
    var totalCents: Int {
        lines.reduce(0) { total, line in
            let (cost, overflow) = (Catalog.product(line.sku)?.priceCents ?? 0).multipliedReportingOverflow(by: line.quantity)
            let (sum, overflowAgain) = total.addingReportingOverflow(cost)
            return overflow || overflowAgain ? .max : sum
        }
    }

    var itemCount: Int {
        lines.reduce(0) { count, line in
            let (sum, overflow) = count.addingReportingOverflow(line.quantity)
            return overflow ? .max : sum
        }
    }
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
