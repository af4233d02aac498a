// swift-tools-version:6.2
import PackageDescription

let strictSettings: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .treatAllWarnings(as: .error),
]

let package = Package(
    name: "sessionkit",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "SessionKit", targets: ["SessionKit"]),
        .library(name: "SessionKitHummingbird", targets: ["SessionKitHummingbird"]),
        .library(name: "SessionKitVapor", targets: ["SessionKitVapor"]),
        .library(name: "SessionKitSQLite", targets: ["SessionKitSQLite"]),
        .library(name: "SessionKitPostgres", targets: ["SessionKitPostgres"]),
        .library(name: "SessionKitRedis", targets: ["SessionKitRedis"]),
        .library(name: "SessionKitDeviceBound", targets: ["SessionKitDeviceBound"]),
        .library(name: "SessionKitTesting", targets: ["SessionKitTesting"]),
        // Tooling, not API: the `--store` URLs the demo, the admin tool and the benchmarks
        // (a separate package) open. Applications construct their store directly.
        .library(name: "_SessionKitTooling", targets: ["SessionKitStores"]),
        .executable(name: "sessionkit-demo", targets: ["SessionKitDemo"]),
        .executable(name: "sessionkit", targets: ["SessionKitCLI"]),
    ],
    // What an application names to build only what it uses: a framework adapter and its stores.
    // A module whose trait is off builds empty and its package is neither resolved nor built.
    traits: [
        .trait(name: "Hummingbird", description: "SessionKitHummingbird: the Hummingbird 2 adapter"),
        .trait(name: "Vapor", description: "SessionKitVapor: the Vapor 4 adapter"),
        .trait(name: "SQLite", description: "SessionKitSQLite: the embedded SQLite store (sqlite-nio)"),
        .trait(name: "PostgreSQL", description: "SessionKitPostgres: the PostgreSQL store (postgres-nio)"),
        .trait(name: "Redis", description: "SessionKitRedis: the Redis and Redis Cluster store (no other package)"),
        .trait(
            name: "DeviceBound",
            description: "SessionKitDeviceBound: device-bound sessions (DBSC): device keys, proofs, challenges, bound cookies"
        ),
        .trait(
            name: "Prometheus",
            description: "The demo's GET /metrics in Prometheus text format (swift-prometheus); the demo's only, off by default"
        ),
        // `swift run sessionkit-demo` on a fresh clone builds the embedded default and no more.
        .default(enabledTraits: ["Hummingbird", "SQLite"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-crypto", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-distributed-tracing", from: "1.7.3"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-http-structured-headers", from: "1.7.0"),
        // 1.13.x only: SessionKitSQLite calls the SQLite copy inside it (module VaporCSQLite), not its API.
        .package(url: "https://github.com/vapor/sqlite-nio", .upToNextMinor(from: "1.13.2")),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/vapor/vapor", from: "4.122.3"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        // `swift package generate-documentation` (Scripts/docs); no target depends on it.
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
    ],
    targets: [
        .target(
            name: "SessionKit",
            dependencies: [
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "SessionKitHummingbird",
            dependencies: [
                "SessionKit",
                .target(name: "SessionKitDeviceBound", condition: .when(traits: ["DeviceBound"])),
                .product(name: "Hummingbird", package: "hummingbird", condition: .when(traits: ["Hummingbird"])),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "SessionKitVapor",
            dependencies: [
                "SessionKit",
                .target(name: "SessionKitDeviceBound", condition: .when(traits: ["DeviceBound"])),
                .product(name: "Vapor", package: "vapor", condition: .when(traits: ["Vapor"])),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "SessionKitSQLite",
            dependencies: [
                "SessionKit",
                // For its copy of SQLite (VaporCSQLite).
                .product(name: "SQLiteNIO", package: "sqlite-nio", condition: .when(traits: ["SQLite"])),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "SessionKitTesting",
            dependencies: ["SessionKit"],
            swiftSettings: strictSettings
        ),
        // The repository's own test plumbing (servers, built executables, gates): not a product.
        .target(
            name: "SessionKitTestSupport",
            dependencies: [
                "SessionKit",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Hummingbird", package: "hummingbird", condition: .when(traits: ["Hummingbird"])),
                .product(name: "HummingbirdTesting", package: "hummingbird", condition: .when(traits: ["Hummingbird"])),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Vapor", package: "vapor", condition: .when(traits: ["Vapor"])),
                .product(name: "VaporTesting", package: "vapor", condition: .when(traits: ["Vapor"])),
            ],
            path: "Tests/SessionKitTestSupport",
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "SessionKitTests",
            dependencies: [
                "SessionKit",
                "SessionKitTesting",
                "SessionKitTestSupport",
                .product(name: "InMemoryTracing", package: "swift-distributed-tracing"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "SessionKitPostgres",
            dependencies: [
                "SessionKit",
                .product(name: "PostgresNIO", package: "postgres-nio", condition: .when(traits: ["PostgreSQL"])),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "SessionKitRedis",
            dependencies: [
                "SessionKit",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "SessionKitDeviceBound",
            dependencies: [
                "SessionKit",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(
                    name: "RawStructuredFieldValues", package: "swift-http-structured-headers", condition: .when(traits: ["DeviceBound"])),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "SessionKitDeviceBoundTests",
            dependencies: [
                "SessionKit",
                "SessionKitDeviceBound",
                "SessionKitTesting",
                "SessionKitTestSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
            ],
            swiftSettings: strictSettings
        ),
        // What the demo's and the admin tool's --store accepts; internal to the package.
        .target(
            name: "SessionKitStores",
            dependencies: [
                "SessionKit",
                .target(name: "SessionKitPostgres", condition: .when(traits: ["PostgreSQL"])),
                .target(name: "SessionKitRedis", condition: .when(traits: ["Redis"])),
                .target(name: "SessionKitSQLite", condition: .when(traits: ["SQLite"])),
                .product(name: "PostgresNIO", package: "postgres-nio", condition: .when(traits: ["PostgreSQL"])),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "SessionKitCLI",
            dependencies: [
                "SessionKit",
                "SessionKitStores",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "SessionKitDemo",
            dependencies: [
                "SessionKit",
                .target(name: "SessionKitDeviceBound", condition: .when(traits: ["DeviceBound"])),
                .target(name: "SessionKitHummingbird", condition: .when(traits: ["Hummingbird"])),
                .target(name: "SessionKitVapor", condition: .when(traits: ["Vapor"])),
                "SessionKitStores",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Hummingbird", package: "hummingbird", condition: .when(traits: ["Hummingbird"])),
                .product(name: "Vapor", package: "vapor", condition: .when(traits: ["Vapor"])),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Prometheus", package: "swift-prometheus", condition: .when(traits: ["Prometheus"])),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings
        ),
        // Test helper, not a product: a process the durability test kills mid-write.
        .executableTarget(
            name: "SessionKitSQLiteCrashWriter",
            dependencies: [
                "SessionKit",
                "SessionKitSQLite",
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/SQLiteCrashWriter",
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "SessionKitSQLiteTests",
            dependencies: [
                "SessionKit", "SessionKitSQLite", "SessionKitTesting", "SessionKitTestSupport",
                // To write a file as an earlier schema version left it.
                .product(name: "SQLiteNIO", package: "sqlite-nio", condition: .when(traits: ["SQLite"])),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "SessionKitDemoTests",
            dependencies: [
                "SessionKitDemo",
                "SessionKit",
                "SessionKitSQLite",
                "SessionKitStores",
                "SessionKitTesting",
                "SessionKitTestSupport",
                .target(name: "SessionKitDeviceBound", condition: .when(traits: ["DeviceBound"])),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Hummingbird", package: "hummingbird", condition: .when(traits: ["Hummingbird"])),
                .product(name: "HummingbirdTesting", package: "hummingbird", condition: .when(traits: ["Hummingbird"])),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "SessionKitPostgresTests",
            dependencies: [
                "SessionKit",
                "SessionKitDemo",
                "SessionKitPostgres",
                "SessionKitTesting",
                "SessionKitTestSupport",
                .product(name: "Hummingbird", package: "hummingbird", condition: .when(traits: ["Hummingbird"])),
                .product(name: "HummingbirdTesting", package: "hummingbird", condition: .when(traits: ["Hummingbird"])),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "PostgresNIO", package: "postgres-nio", condition: .when(traits: ["PostgreSQL"])),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "SessionKitRedisTests",
            dependencies: [
                "SessionKit",
                "SessionKitDemo",
                "SessionKitRedis",
                "SessionKitTesting",
                "SessionKitTestSupport",
                .product(name: "Hummingbird", package: "hummingbird", condition: .when(traits: ["Hummingbird"])),
                .product(name: "HummingbirdTesting", package: "hummingbird", condition: .when(traits: ["Hummingbird"])),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "SessionKitCLITests",
            dependencies: [
                "SessionKit",
                "SessionKitDemo",
                "SessionKitSQLite",
                "SessionKitStores",
                "SessionKitTesting",
                "SessionKitTestSupport",
                .product(name: "Hummingbird", package: "hummingbird", condition: .when(traits: ["Hummingbird"])),
                .product(name: "HummingbirdTesting", package: "hummingbird", condition: .when(traits: ["Hummingbird"])),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            // One suite of cases run against both adapters (a harness drives either framework).
            name: "SessionKitAdapterTests",
            dependencies: [
                "SessionKit",
                "SessionKitHummingbird",
                "SessionKitVapor",
                "SessionKitPostgres",
                "SessionKitRedis",
                "SessionKitSQLite",
                "SessionKitTesting",
                "SessionKitTestSupport",
                .product(name: "Hummingbird", package: "hummingbird", condition: .when(traits: ["Hummingbird"])),
                .product(name: "HummingbirdTesting", package: "hummingbird", condition: .when(traits: ["Hummingbird"])),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "PostgresNIO", package: "postgres-nio", condition: .when(traits: ["PostgreSQL"])),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Vapor", package: "vapor", condition: .when(traits: ["Vapor"])),
                .product(name: "VaporTesting", package: "vapor", condition: .when(traits: ["Vapor"])),
            ],
            swiftSettings: strictSettings
        ),
    ]
)
