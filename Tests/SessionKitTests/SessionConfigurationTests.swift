import Foundation
import SessionKit
import Testing

@Suite struct SessionConfigurationTests {
    @Test func defaultsAreTheDocumentedOnes() throws {
        let configuration = SessionConfiguration()
        #expect(configuration.idleTimeout == .seconds(1800))
        #expect(configuration.absoluteLifetime == .seconds(12 * 3600))
        #expect(configuration.rememberMeIdleTimeout == .seconds(7 * 86_400))
        #expect(configuration.rememberMeAbsoluteLifetime == .seconds(30 * 86_400))
        #expect(configuration.touchFraction == 0.1)
        #expect(configuration.storeTimeout == .seconds(2))
        #expect(configuration.cookie.name == "__Host-session")
        try configuration.validate()
    }

    @Test func managerRefusesBadSettingsByName() {
        var configuration = SessionConfiguration()
        configuration.idleTimeout = .zero
        #expect { try SessionManager(store: MemorySessionStore(), configuration: configuration) } throws: { error in
            (error as? SessionConfigurationError)?.setting == "idleTimeout"
        }
        configuration = SessionConfiguration()
        configuration.touchFraction = 1.5
        #expect { try configuration.validate() } throws: { ($0 as? SessionConfigurationError)?.setting == "touchFraction" }
        configuration = SessionConfiguration()
        configuration.maxUpdateAttempts = 0
        #expect { try configuration.validate() } throws: { ($0 as? SessionConfigurationError)?.setting == "maxUpdateAttempts" }
        configuration = SessionConfiguration()
        configuration.cookie.domain = "example.com"
        #expect { try configuration.validate() } throws: { ($0 as? SessionConfigurationError)?.setting == "cookie.domain" }
    }

    @Test func encodedValuesEnforceThePerValueLimit() throws {
        let limits = SessionLimits(maxValueBytes: 16, maxSessionBytes: 64)
        let fits = SessionChanges(values: ["a": SessionValue("short"), "b": nil])
        let encoded = try fits.encodedValues(within: limits)
        #expect(encoded["a"] == .some(Data("\"short\"".utf8)))
        #expect(encoded["b"] == .some(nil))
        let tooBig = SessionChanges(values: ["big": SessionValue(String(repeating: "x", count: 100))])
        #expect { try tooBig.encodedValues(within: limits) } throws: { error in
            guard let error = error as? SessionStoreError else { return false }
            return error.code == .tooLarge && error.message.contains("big")
        }
    }
}
