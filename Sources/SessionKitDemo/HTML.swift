import Foundation
import HTTPTypes
import SessionKit

/// Server-rendered pages from plain Swift strings; every interpolated value goes through
/// ``escape(_:)``.
enum HTML {
    /// The text with `&`, `<`, `>`, `"` and `'` escaped. It works on Unicode scalars, not
    /// characters: a `"` followed by a combining mark, or a `<` after a prepended one, is one
    /// character that equals neither, and would otherwise go out raw.
    static func escape(_ text: String) -> String {
        var output = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": output.append(contentsOf: "&amp;".unicodeScalars)
            case "<": output.append(contentsOf: "&lt;".unicodeScalars)
            case ">": output.append(contentsOf: "&gt;".unicodeScalars)
            case "\"": output.append(contentsOf: "&quot;".unicodeScalars)
            case "'": output.append(contentsOf: "&#39;".unicodeScalars)
            default: output.append(scalar)
            }
        }
        return String(output)
    }

    struct Frame {
        var user: String?
        var cartCount: Int
        var preferences: Preferences
        var notice: String?
        var session: SessionInfo?
        var storeDescription: String
        /// Now, by the session manager's clock: what times on the page are relative to.
        var now: Date
        /// The token forms of this page carry; `nil` for a visitor without a session.
        var csrfToken: String?

        /// The hidden field that carries ``csrfToken`` in a form, or nothing.
        var csrfField: String {
            csrfToken.map { #"<input type="hidden" name="_csrf" value="\#(HTML.escape($0))">"# } ?? ""
        }
    }

    static func page(_ title: String, frame: Frame, status: HTTPResponse.Status = .ok, body: String) -> ShopResponse {
        let dark = frame.preferences.theme == .dark
        let account =
            frame.user.map { user in
                """
                <span>Signed in as <strong>\(escape(user))</strong></span>
                <form method="post" action="/logout" class="inline">\(frame.csrfField)<button>Log out</button></form>
                """
            } ?? #"<a href="/login">Log in</a>"#
        let notice = frame.notice.map { #"<p class="notice" role="status">\#(escape($0))</p>"# } ?? ""
        let footer: String
        if let session = frame.session {
            footer = """
                Your session ends \(time(session.idleDeadline, now: frame.now)) if you stay idle, and \
                \(time(session.absoluteDeadline, now: frame.now)) at the latest\(session.isPersistent ? " (remembered on this device)" : "").
                """
        } else {
            footer = "You have no session: nothing is stored about you until you add to your cart, log in or save preferences."
        }
        let html = """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
            <title>\(escape(title)) · SessionKit demo shop</title>
            <style>
            body { font-family: system-ui, sans-serif; max-width: 56rem; margin: 0 auto; padding: 1rem;
                   background: \(dark ? "#16181d" : "#fafafa"); color: \(dark ? "#e6e6e6" : "#1d1d1f"); }
            a { color: \(dark ? "#8ab4ff" : "#0b57d0"); }
            nav { display: flex; gap: 1rem; align-items: center; flex-wrap: wrap; border-bottom: 1px solid #8884; padding-bottom: .5rem; }
            nav .account { margin-left: auto; display: flex; gap: .5rem; align-items: center; }
            table { border-collapse: collapse; width: 100%; } td, th { text-align: left; padding: .35rem; border-bottom: 1px solid #8883; }
            .notice { background: #2e7d3233; padding: .5rem; border-radius: .3rem; }
            .error { background: #c6282833; padding: .5rem; border-radius: .3rem; }
            form.inline { display: inline; } footer { margin-top: 2rem; font-size: .85rem; opacity: .8; }
            </style></head>
            <body>
            <nav><a href="/"><strong>Tea &amp; Coffee</strong></a><a href="/cart">Cart (\(frame.cartCount))</a>
            <a href="/preferences">Preferences</a><a href="/sessions">Your sessions</a><span class="account">\(account)</span></nav>
            \(notice)
            <main><h1>\(escape(title))</h1>
            \(body)
            </main>
            <footer>\(footer) Sessions are kept in \(escape(frame.storeDescription)).</footer>
            </body></html>
            """
        return ShopResponse(
            status: status,
            headers: [
                .contentType: "text/html; charset=utf-8",
                // Pages show who is signed in, and "Your sessions" their addresses: never cached,
                // so Back after logout shows nothing.
                .cacheControl: "no-store",
                .contentSecurityPolicy: "default-src 'self'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
            ],
            body: Array(html.utf8)
        )
    }

    /// `date` as a person reads it, relative to `now` ("2 minutes ago", "in 29 minutes"),
    /// with the exact time (UTC) on hover and in the `datetime` attribute.
    static func time(_ date: Date, now: Date) -> String {
        let exact = date.formatted(
            Date.ISO8601FormatStyle(dateTimeSeparator: .space, timeZone: .gmt).year().month().day().time(includingFractionalSeconds: false))
        return #"<time datetime="\#(date.formatted(.iso8601))" title="\#(exact) UTC">\#(relative(date, now: now))</time>"#
    }

    /// How far `date` is from `now`, rounded to the largest unit a person would say: "just
    /// now", "3 hours ago", "in 30 minutes" (for 29 minutes 50 seconds), "in 2 days".
    static func relative(_ date: Date, now: Date) -> String {
        let seconds = Int(date.timeIntervalSince(now).rounded())
        let distance = abs(seconds)
        guard distance >= 5 else { return "just now" }
        let minutes = (distance + 30) / 60
        let hours = (distance + 1_800) / 3_600
        let (count, unit) =
            if distance < 60 {
                (distance, "second")
            } else if minutes < 60 {
                (minutes, "minute")
            } else if hours < 24 {
                (hours, "hour")
            } else {
                ((distance + 43_200) / 86_400, "day")
            }
        let amount = "\(count) \(unit)\(count == 1 ? "" : "s")"
        return seconds < 0 ? "\(amount) ago" : "in \(amount)"
    }

    static func redirect(_ location: String) -> ShopResponse {
        ShopResponse(status: .seeOther, headers: [.location: location])
    }
}

extension HTTPField.Name {
    /// `Clear-Site-Data`, which HTTPTypes does not name. A constant, valid field name.
    static let clearSiteData = HTTPField.Name("Clear-Site-Data")!
}
