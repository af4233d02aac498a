import Crypto
import Foundation

/// The demo's user accounts. Passwords are kept only as salted SHA-256 digests and
/// compared in constant time. (A real application would use a slow password hash.)
struct Accounts: Sendable {
    private struct Account: Sendable {
        var salt: [UInt8]
        var digest: [UInt8]
    }

    static let usernames = ["alice", "bob"]

    private let accounts: [String: Account]
    /// The passwords as generated or given, for printing once at start-up.
    let passwords: [(username: String, password: String)]

    /// Accounts for ``usernames``, each with `password`, or a fresh random one when `nil`.
    init(password: String?) {
        var accounts = [String: Account]()
        var passwords = [(String, String)]()
        for username in Self.usernames {
            let password = password ?? Self.randomPassword()
            let salt = (0..<16).map { _ in UInt8.random(in: .min ... .max) }
            accounts[username] = Account(salt: salt, digest: Self.digest(password, salt: salt))
            passwords.append((username, password))
        }
        self.accounts = accounts
        self.passwords = passwords
    }

    /// Whether `password` is `username`'s. Takes the same time for a wrong password as a
    /// right one, and for an unknown user as a known one.
    func verify(username: String, password: String) -> Bool {
        let account = accounts[username] ?? Account(salt: Array(repeating: 0, count: 16), digest: Array(repeating: 0xFF, count: 32))
        let candidate = Self.digest(password, salt: account.salt)
        var difference: UInt8 = 0
        for (left, right) in zip(candidate, account.digest) { difference |= left ^ right }
        return difference == 0 && accounts[username] != nil
    }

    private static func digest(_ password: String, salt: [UInt8]) -> [UInt8] {
        var hash = SHA256()
        hash.update(data: salt)
        hash.update(data: Data(password.utf8))
        return Array(hash.finalize())
    }

    private static func randomPassword() -> String {
        let alphabet = Array("abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789")
        return String((0..<12).map { _ in alphabet.randomElement()! })
    }
}
