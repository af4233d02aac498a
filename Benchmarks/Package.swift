// swift-tools-version:6.2
// Benchmarks live apart from the library so its build stays lean: this package alone
// depends on the peers (hummingbird-auth sessions) that SessionKit is compared with.
import Foundation
import PackageDescription

// A path dependency is named after its folder, which differs between clones.
let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().lastPathComponent.lowercased()

let package = Package(
    name: "sessionkit-benchmarks",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "bench-server", targets: ["BenchServer"])
    ],
    dependencies: [
        .package(path: ".."),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-auth", from: "2.5.0"),
    ],
    targets: [
        .executableTarget(
            name: "BenchServer",
            dependencies: [
                .product(name: "SessionKit", package: root),
                .product(name: "SessionKitHummingbird", package: root),
                .product(name: "SessionKitSQLite", package: root),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdAuth", package: "hummingbird-auth"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]
        )
    ]
)
