@_spi(Parsers) import SessionKit
import Testing

@Suite struct CookieTests {
    @Test func parsesEveryFieldQuotesAndWhitespace() {
        let fields = ["a=1; session=abc ;b=2", "  session=\"def\"\t; c=3", "sessionx=no; xsession=no", "=weird; novalue"]
        #expect(CookieHeader.values(named: "session", in: fields) == ["abc", "def"])
        #expect(CookieHeader.values(named: "c", in: fields) == ["3"])
        #expect(CookieHeader.values(named: "missing", in: fields) == [])
        #expect(CookieHeader.values(named: "a", in: ["a=x=y"]) == ["x=y"])
        #expect(CookieHeader.values(named: "a", in: ["a=\""]) == ["\""])
    }

    @Test func setCookieHasTheSecureDefaults() {
        let configuration = SessionCookieConfiguration()
        #expect(
            CookieHeader.setCookie("TOKEN", maxAge: nil, configuration: configuration)
                == "__Host-session=TOKEN; Path=/; Secure; HttpOnly; SameSite=Lax"
        )
        #expect(
            CookieHeader.setCookie("TOKEN", maxAge: 60, configuration: configuration)
                == "__Host-session=TOKEN; Max-Age=60; Path=/; Secure; HttpOnly; SameSite=Lax"
        )
        #expect(
            CookieHeader.expireCookie(configuration: configuration)
                == "__Host-session=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/; Secure; HttpOnly; SameSite=Lax"
        )
    }

    @Test func expiringCookieKeepsNamePathAndDomain() {
        var configuration = SessionCookieConfiguration()
        configuration.name = "__Secure-sid"
        configuration.domain = "example.com"
        configuration.path = "/shop"
        configuration.sameSite = .strict
        #expect(
            CookieHeader.expireCookie(configuration: configuration)
                == "__Secure-sid=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Domain=example.com; Path=/shop; Secure; HttpOnly; SameSite=Strict"
        )
    }

    @Test func defaultsValidate() throws {
        try SessionCookieConfiguration().validate()
        try SessionCookieConfiguration.insecureForDevelopment().validate()
        #expect(SessionCookieConfiguration.insecureForDevelopment().secure == false)
    }

    static func invalid(_ change: (inout SessionCookieConfiguration) -> Void) -> SessionCookieConfiguration {
        var configuration = SessionCookieConfiguration()
        change(&configuration)
        return configuration
    }

    @Test(arguments: [
        (invalid { $0.secure = false }, "cookie.secure"),
        (invalid { $0.domain = "example.com" }, "cookie.domain"),
        (invalid { $0.path = "/app" }, "cookie.path"),
        (invalid { $0.name = "bad name" }, "cookie.name"),
        (invalid { $0.name = "" }, "cookie.name"),
        (
            invalid {
                $0.name = "sid"; $0.path = "no-slash"
            }, "cookie.path"
        ),
        (
            invalid {
                $0.name = "sid"; $0.domain = "a;b"
            }, "cookie.domain"
        ),
        (
            invalid {
                $0.name = "__Secure-sid"; $0.secure = false
            }, "cookie.secure"
        ),
        (
            invalid {
                $0.name = "sid"; $0.secure = false; $0.sameSite = .none
            }, "cookie.sameSite"
        ),
        (invalid { $0.maxAgeCap = .seconds(401 * 86_400) }, "cookie.maxAgeCap"),
        // Browsers match the prefixes without regard to case.
        (
            invalid {
                $0.name = "__host-sid"; $0.secure = false
            }, "cookie.secure"
        ),
        (
            invalid {
                $0.name = "__HOST-sid"; $0.domain = "example.com"
            }, "cookie.domain"
        ),
        (
            invalid {
                $0.name = "__secure-sid"; $0.secure = false
            }, "cookie.secure"
        ),
    ])
    func invalidConfigurationNamesTheSetting(_ configuration: SessionCookieConfiguration, _ setting: String) {
        #expect { try configuration.validate() } throws: { ($0 as? SessionConfigurationError)?.setting == setting }
    }

    @Test func cacheControlMerging() {
        var outcome = SessionCommitOutcome()
        #expect(outcome.cacheControl(merging: "public, max-age=60") == nil)
        outcome.sessionRead = true
        #expect(outcome.cacheControl(merging: nil) == "private")
        #expect(outcome.cacheControl(merging: "public, max-age=60, s-maxage=600") == "private, max-age=60")
        #expect(outcome.cacheControl(merging: "private, max-age=5") == nil)
        #expect(outcome.cacheControl(merging: "no-store") == nil)
        outcome.headerFields = [SessionHeaderField(name: .setCookie, value: "x=y")]
        #expect(outcome.cacheControl(merging: "public, max-age=60") == "no-store")
    }
}
