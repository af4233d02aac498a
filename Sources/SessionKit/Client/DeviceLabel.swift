/// A short human name for the device behind a user agent, such as "Firefox on Linux",
/// for "your sessions" pages. A label, not an identification: user agents are claims.
package enum DeviceLabel {
    package static func describe(userAgent: String?) -> String {
        guard let userAgent, !userAgent.isEmpty else { return "Unknown device" }
        let browser = self.browser(userAgent)
        guard let system = system(userAgent) else { return browser }
        return "\(browser) on \(system)"
    }

    private static func browser(_ agent: String) -> String {
        let rules: [(marker: String, name: String)] = [
            ("Edg/", "Edge"), ("EdgA/", "Edge"), ("EdgiOS/", "Edge"), ("OPR/", "Opera"), ("SamsungBrowser/", "Samsung Internet"),
            ("Firefox/", "Firefox"), ("FxiOS/", "Firefox"), ("CriOS/", "Chrome"), ("Chrome/", "Chrome"), ("Safari/", "Safari"),
            ("curl/", "curl"), ("Wget/", "Wget"), ("python-requests/", "Python requests"), ("okhttp/", "OkHttp"),
        ]
        if let rule = rules.first(where: { agent.contains($0.marker) }) { return rule.name }
        if agent.lowercased().contains("bot") { return "Bot" }
        return String(agent.prefix { $0 != "/" && $0 != " " }.prefix(40))
    }

    private static func system(_ agent: String) -> String? {
        let rules: [(marker: String, name: String)] = [
            ("iPhone", "iPhone"), ("iPad", "iPad"), ("Android", "Android"), ("CrOS", "ChromeOS"), ("Windows", "Windows"),
            ("Macintosh", "macOS"), ("Mac OS X", "macOS"), ("Linux", "Linux"),
        ]
        return rules.first { agent.contains($0.marker) }?.name
    }
}
