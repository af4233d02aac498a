import Hummingbird
import SessionKitTestSupport
import Vapor

@testable import SessionKitDemo

extension Shop {
    /// Runs `body` with a client of this shop served by `framework`: in process, or (`live`)
    /// through a real connection.
    func test<Value: Sendable>(
        _ framework: Framework, live: Bool = false, _ body: @Sendable (any AdapterClient) async throws -> Value
    ) async throws -> Value {
        switch framework {
        case .hummingbird:
            return try await withHummingbirdClient(Hummingbird.Application(router: router()), live: live, body)
        case .vapor:
            let app = try await Vapor.Application.make(.testing)
            app.logger.logLevel = .warning
            configure(app)
            return try await withVaporClient(app, live: live, body)
        }
    }
}
