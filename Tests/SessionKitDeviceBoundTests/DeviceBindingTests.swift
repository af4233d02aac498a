#if DeviceBound
import Foundation
import SessionKit
import SessionKitDeviceBound
import SessionKitTestSupport
import Testing

@Suite struct DeviceBindingTests {
    static let secret = [UInt8](repeating: 7, count: 32)
    static let otherSecret = [UInt8](repeating: 9, count: 32)
    let binding = try! DeviceBinding(secrets: [secret])
    let now = Date(timeIntervalSince1970: 1_800_000_000)

    @Test func aChallengeOpensForItsSubjectUntilItsLifetimeEnds() throws {
        let challenge = binding.issueChallenge(for: "sid", at: now)
        #expect(challenge.text.count == 54)
        #expect(challenge.issuedAt == now)
        let opened = try #require(binding.openChallenge(challenge.text, for: "sid", at: now + 300))
        #expect(opened == challenge)
        #expect(binding.openChallenge(challenge.text, for: "sid", at: now + 301) == nil)
        #expect(binding.openChallenge(challenge.text, for: "other", at: now) == nil)
        // Issued a long way ahead of this server's clock: refused too.
        #expect(binding.openChallenge(challenge.text, for: "sid", at: now - 61) == nil)
        #expect(binding.openChallenge(challenge.text, for: "sid", at: now - 60) != nil)
    }

    @Test func challengesAreUniqueAndATamperedOneDoesNotOpen() {
        let challenges = (0..<100).map { _ in binding.issueChallenge(for: "sid", at: now) }
        #expect(Set(challenges.map(\.nonce)).count == 100)
        let text = Array(challenges[0].text)
        for index in [0, 10, 20, 40, 53] {
            var tampered = text
            tampered[index] = tampered[index] == "A" ? "B" : "A"
            #expect(binding.openChallenge(String(tampered), for: "sid", at: now) == nil)
        }
        for malformed in [
            "", String(text.dropLast()), String(text) + "A", String(repeating: "=", count: 54), String(text.prefix(53)) + "é",
        ] {
            #expect(binding.openChallenge(malformed, for: "sid", at: now) == nil)
        }
    }

    @Test func theFirstSecretMakesAndEverySecretChecks() throws {
        let old = binding.issueChallenge(for: "sid", at: now)
        let key = try DeviceProof(registration: SoftwareDevice.p256().proof(challenge: "c")).key
        let oldCookie = binding.boundCookie(sessionIdentifier: "sid", keyThumbprint: key.thumbprint, at: now)
        let rotated = try DeviceBinding(secrets: [Self.otherSecret, Self.secret])
        #expect(rotated.openChallenge(old.text, for: "sid", at: now) != nil)
        #expect(rotated.isValidBoundCookie(oldCookie.value, sessionIdentifier: "sid", keyThumbprint: key.thumbprint, at: now))
        let new = rotated.issueChallenge(for: "sid", at: now)
        #expect(binding.openChallenge(new.text, for: "sid", at: now) == nil)
        let retired = try DeviceBinding(secrets: [Self.otherSecret])
        #expect(retired.openChallenge(old.text, for: "sid", at: now) == nil)
        #expect(!retired.isValidBoundCookie(oldCookie.value, sessionIdentifier: "sid", keyThumbprint: key.thumbprint, at: now))
    }

    @Test func aBoundCookieIsValidForItsSessionAndKeyUntilItExpires() throws {
        let key = try DeviceProof(registration: SoftwareDevice.p256().proof(challenge: "c")).key
        let other = try DeviceProof(registration: SoftwareDevice.p256().proof(challenge: "c")).key
        let cookie = binding.boundCookie(sessionIdentifier: "sid", keyThumbprint: key.thumbprint, at: now)
        #expect(cookie.expires == now + 600)
        #expect(cookie.value.count == 32)
        #expect(binding.isValidBoundCookie(cookie.value, sessionIdentifier: "sid", keyThumbprint: key.thumbprint, at: now + 599))
        #expect(!binding.isValidBoundCookie(cookie.value, sessionIdentifier: "sid", keyThumbprint: key.thumbprint, at: now + 600))
        #expect(!binding.isValidBoundCookie(cookie.value, sessionIdentifier: "other", keyThumbprint: key.thumbprint, at: now))
        #expect(!binding.isValidBoundCookie(cookie.value, sessionIdentifier: "sid", keyThumbprint: other.thumbprint, at: now))
        var tampered = Array(cookie.value)
        tampered[5] = tampered[5] == "A" ? "B" : "A"
        #expect(!binding.isValidBoundCookie(String(tampered), sessionIdentifier: "sid", keyThumbprint: key.thumbprint, at: now))
        // A challenge is not a cookie, nor the reverse.
        let challenge = binding.issueChallenge(for: key.thumbprint + "sid", at: now)
        #expect(!binding.isValidBoundCookie(challenge.text, sessionIdentifier: "sid", keyThumbprint: key.thumbprint, at: now))
        #expect(binding.openChallenge(cookie.value, for: key.thumbprint + "sid", at: now) == nil)
    }

    @Test func aCookieMadeForALongerLifetimeIsRefusedWhenTheLifetimeIsShortened() throws {
        let key = try DeviceProof(registration: SoftwareDevice.p256().proof(challenge: "c")).key
        let long = try DeviceBinding(secrets: [Self.secret], boundCookieLifetime: .seconds(3_600))
        let cookie = long.boundCookie(sessionIdentifier: "sid", keyThumbprint: key.thumbprint, at: now)
        #expect(long.isValidBoundCookie(cookie.value, sessionIdentifier: "sid", keyThumbprint: key.thumbprint, at: now))
        #expect(!binding.isValidBoundCookie(cookie.value, sessionIdentifier: "sid", keyThumbprint: key.thumbprint, at: now))
    }

    @Test func aSettingThatCannotWorkIsRefusedByName() {
        func setting(_ make: () throws(SessionConfigurationError) -> DeviceBinding) -> String? {
            do {
                _ = try make()
                return nil
            } catch {
                return error.setting
            }
        }
        #expect(setting { () throws(SessionConfigurationError) in try DeviceBinding(secrets: []) } == "deviceBinding.secrets")
        #expect(
            setting { () throws(SessionConfigurationError) in try DeviceBinding(secrets: [Self.secret, [1, 2]]) }
                == "deviceBinding.secrets[1]")
        #expect(
            setting { () throws(SessionConfigurationError) in try DeviceBinding(secrets: [Self.secret], boundCookieLifetime: .seconds(5)) }
                == "deviceBinding.boundCookieLifetime")
        #expect(
            setting { () throws(SessionConfigurationError) in try DeviceBinding(secrets: [Self.secret], challengeLifetime: .seconds(7200)) }
                == "deviceBinding.challengeLifetime")
        #expect(
            setting { () throws(SessionConfigurationError) in try DeviceBinding(secrets: [Self.secret], algorithms: [.es256, .es256]) }
                == "deviceBinding.algorithms")
        #expect(setting { () throws(SessionConfigurationError) in try DeviceBinding(secrets: [Self.secret]) } == nil)
    }

    @Test func sessionIdentifiersAreRandom() {
        let identifiers = (0..<100).map { _ in DeviceBinding.newSessionIdentifier() }
        #expect(Set(identifiers).count == 100)
        #expect(identifiers.allSatisfy { $0.count == 22 && Base64URL.decodeCanonical($0)?.count == 16 })
    }
}
#endif
