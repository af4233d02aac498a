/// The shop's products. Prices are in US cents; other currencies are converted for display.
struct Product: Sendable, Hashable {
    var sku: String
    var name: String
    var priceCents: Int
}

enum Catalog {
    static let products: [Product] = [
        Product(sku: "tea-green", name: "Green tea, 100 g", priceCents: 650),
        Product(sku: "tea-black", name: "Black tea, 100 g", priceCents: 590),
        Product(sku: "tea-oolong", name: "Oolong tea, 100 g", priceCents: 890),
        Product(sku: "coffee-beans", name: "Coffee beans, 250 g", priceCents: 1150),
        Product(sku: "coffee-ground", name: "Ground coffee, 250 g", priceCents: 1090),
        Product(sku: "mug", name: "Stoneware mug", priceCents: 1400),
        Product(sku: "teapot", name: "Glass teapot", priceCents: 3200),
        Product(sku: "kettle", name: "Gooseneck kettle", priceCents: 5900),
        Product(sku: "grinder", name: "Hand grinder", priceCents: 4500),
        Product(sku: "filter", name: "Paper filters, 100", priceCents: 450),
        Product(sku: "honey", name: "Forest honey, 500 g", priceCents: 990),
        Product(sku: "biscuits", name: "Oat biscuits", priceCents: 375),
    ]

    private static let bySKU = Dictionary(uniqueKeysWithValues: products.map { ($0.sku, $0) })

    static func product(_ sku: String) -> Product? { bySKU[sku] }
}

/// Display currencies and their rates against US dollars.
enum Currency: String, Codable, Sendable, CaseIterable {
    case usd = "USD"
    case eur = "EUR"
    case gbp = "GBP"

    private var perDollar: Double {
        switch self {
        case .usd: 1
        case .eur: 0.92
        case .gbp: 0.79
        }
    }

    private var symbol: String {
        switch self {
        case .usd: "$"
        case .eur: "€"
        case .gbp: "£"
        }
    }

    func format(cents: Int) -> String {
        let converted = (Double(cents) * perDollar).rounded()
        let whole = Int(converted) / 100
        let fraction = Int(converted) % 100
        return "\(symbol)\(whole).\(fraction < 10 ? "0" : "")\(fraction)"
    }
}
