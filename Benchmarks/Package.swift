// swift-tools-version:6.2
// Benchmarks live apart from the library so its build stays lean: this package alone
// depends on the peers (hummingbird-auth, Vapor's sessions and Fluent) that SessionKit is compared with, and
// on ordo-one/benchmark for the micro benchmarks.
import Foundation
import PackageDescription

// A path dependency is named after its folder, which differs between clones.
let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().lastPathComponent.lowercased()

let package = Package(
    name: "sessionkit-benchmarks",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "bench-server", targets: ["BenchServer"]),
        .executable(name: "bench-store", targets: ["BenchStore"]),
        .executable(name: "bench-vapor", targets: ["BenchVapor"]),
        .executable(name: "bench-requests", targets: ["BenchRequests"]),
    ],
    dependencies: [
        // Every trait: the benchmarks compare both adapters and every store.
        .package(path: "..", traits: ["Hummingbird", "Vapor", "SQLite", "PostgreSQL", "Redis"]),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-auth", from: "2.5.0"),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
        .package(url: "https://github.com/vapor/vapor", from: "4.122.3"),
        .package(url: "https://github.com/vapor/fluent", from: "4.13.0"),
        .package(url: "https://github.com/vapor/fluent-postgres-driver", from: "2.14.0"),
        .package(url: "https://github.com/vapor/fluent-sqlite-driver", from: "4.9.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
    ],
    targets: [
        .target(
            name: "BenchFixtures",
            dependencies: [
                .product(name: "SessionKit", package: root),
                .product(name: "SessionKitHummingbird", package: root),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdAuth", package: "hummingbird-auth"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6), .enableUpcomingFeature("InternalImportsByDefault")]
        ),
        // postgres-nio alone, with no session library: the PostgreSQL store's baseline.
        .target(
            name: "BenchPostgres",
            dependencies: [.product(name: "PostgresNIO", package: "postgres-nio")],
            swiftSettings: [.swiftLanguageMode(.v6), .enableUpcomingFeature("InternalImportsByDefault")]
        ),
        .executableTarget(
            name: "BenchServer",
            dependencies: [
                "BenchFixtures",
                "BenchPostgres",
                .product(name: "SessionKitPostgres", package: root),
                .product(name: "SessionKit", package: root),
                .product(name: "SessionKitHummingbird", package: root),
                .product(name: "SessionKitSQLite", package: root),
                .product(name: "_SessionKitTooling", package: root),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdAuth", package: "hummingbird-auth"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .executableTarget(
            name: "BenchStore",
            dependencies: [
                "BenchFixtures",
                "BenchPostgres",
                .product(name: "SessionKitPostgres", package: root),
                .product(name: "SessionKit", package: root),
                .product(name: "_SessionKitTooling", package: root),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .executableTarget(
            name: "BenchRequests",
            dependencies: [
                "BenchFixtures",
                .product(name: "SessionKit", package: root),
                .product(name: "_SessionKitTooling", package: root),
                .product(name: "SessionKitHummingbird", package: root),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdAuth", package: "hummingbird-auth"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .executableTarget(
            name: "BenchVapor",
            dependencies: [
                "BenchFixtures",
                "BenchPostgres",
                .product(name: "SessionKitPostgres", package: root),
                .product(name: "SessionKit", package: root),
                .product(name: "SessionKitVapor", package: root),
                .product(name: "_SessionKitTooling", package: root),
                .product(name: "Vapor", package: "vapor"),
                .product(name: "Fluent", package: "fluent"),
                .product(name: "FluentPostgresDriver", package: "fluent-postgres-driver"),
                .product(name: "FluentSQLiteDriver", package: "fluent-sqlite-driver"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        // Micro benchmarks on ordo-one/benchmark: `swift package --package-path Benchmarks benchmark`.
        .executableTarget(
            name: "SessionKitMicro",
            dependencies: [
                "BenchFixtures",
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "SessionKit", package: root),
                .product(name: "SessionKitHummingbird", package: root),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ],
            path: "Benchmarks/SessionKitMicro",
            swiftSettings: [.swiftLanguageMode(.v6)],
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ]
)
