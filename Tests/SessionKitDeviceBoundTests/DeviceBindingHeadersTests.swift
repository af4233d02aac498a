#if DeviceBound
import Foundation
import SessionKitDeviceBound
import SessionKitTestSupport
import Testing

@Suite struct DeviceBindingHeadersTests {
    @Test func theRegistrationHeaderIsOneInnerListOfAlgorithmsWithPathAndChallenge() {
        #expect(
            DeviceBindingHeaders.registration(algorithms: [.es256, .rs256], path: "/dbsc/register", challenge: "c1")
                == #"(ES256 RS256);path="/dbsc/register";challenge="c1""#)
        #expect(
            DeviceBindingHeaders.registration(algorithms: [.es256], path: "reg", challenge: "cv", authorization: "ac")
                == #"(ES256);path="reg";challenge="cv";authorization="ac""#)
    }

    @Test func theChallengeHeaderIsAStringWithTheSessionsId() {
        #expect(DeviceBindingHeaders.challenge("c1", sessionIdentifier: "sid") == #""c1";id="sid""#)
        #expect(DeviceBindingHeaders.challenge(#"a"b\c"#, sessionIdentifier: "s") == #""a\"b\\c";id="s""#)
    }

    @Test func theSessionIdentifierIsReadAsAStringAndAnythingElseIsAbsent() {
        #expect(DeviceBindingHeaders.sessionIdentifier(in: #""sid""#) == "sid")
        #expect(DeviceBindingHeaders.sessionIdentifier(in: #" "sid";x=1 "#) == "sid")
        for value in ["sid", #""sid"#, #""a", "b""#, "", "1", #""\u{7}""#, #""é""#, "\"" + String(repeating: "a", count: 9000) + "\""] {
            #expect(DeviceBindingHeaders.sessionIdentifier(in: value) == nil, "\(value.prefix(20))")
        }
    }

    @Test func theProofIsReadQuotedOrBare() {
        #expect(DeviceBindingHeaders.proof(in: #""a.b.c""#) == "a.b.c")
        #expect(DeviceBindingHeaders.proof(in: " a-_.b.c9 ") == "a-_.b.c9")
        for value in ["a b.c", "a.b.c;x=1", #""a.b"c""#, "", "   ", "é.b.c"] {
            #expect(DeviceBindingHeaders.proof(in: value) == nil, "\(value)")
        }
    }

    @Test func skippedSessionsAreReadWithTheirReasons() {
        let entries = DeviceBindingHeaders.skipped(in: [
            #"unreachable;session_identifier="123", quota_exceeded;session_identifier="456""#, "server_error", "(not a token)", "\"str\"",
            "bad header((",
        ])
        #expect(entries.map(\.reason) == ["unreachable", "quota_exceeded", "server_error"])
        #expect(entries.map(\.sessionIdentifier) == ["123", "456", nil])
    }

    @Test func sessionInstructionsAreTheDraftsJSON() throws {
        let instructions = DeviceSessionInstructions(
            sessionIdentifier: "sid", refreshURL: "/dbsc/refresh", scope: .init(includeSite: false),
            credentials: [.init(name: "__Host-bound", attributes: "Path=/; Secure; HttpOnly; SameSite=Lax")])
        #expect(
            String(decoding: instructions.json, as: UTF8.self)
                == #"{"credentials":[{"attributes":"Path=/; Secure; HttpOnly; SameSite=Lax","name":"__Host-bound","type":"cookie"}],"#
                + #""refresh_url":"/dbsc/refresh","scope":{"include_site":false},"session_identifier":"sid"}"#)
        #expect(
            String(decoding: DeviceSessionInstructions.ended(sessionIdentifier: "sid").json, as: UTF8.self)
                == #"{"continue":false,"session_identifier":"sid"}"#)
    }
}
#endif
