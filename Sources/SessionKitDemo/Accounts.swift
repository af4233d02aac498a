import Crypto
import CryptoExtras
import Foundation

/// The demo's user accounts. Passwords are kept only as PBKDF2-SHA256 digests (600 000
/// rounds, OWASP's figure: about a quarter of a second of CPU here) with a random salt each,
/// and compared in constant time.
struct Accounts: Sendable {
    /// PBKDF2 rounds for the demo.
    static let rounds = 600_000
    /// A cost for tests only: fast, and far too weak for any real password.
    static let testOnlyRounds = 1_000

    private struct Account: Sendable {
        var salt: [UInt8]
        var digest: [UInt8]
    }

    static let usernames = ["alice", "bob"]

    private let accounts: [String: Account]
    private let rounds: Int
    /// The passwords as generated or given, for printing once at start-up.
    let passwords: [(username: String, password: String)]

    /// Accounts for ``usernames``, each with `password`, or a fresh random one when `nil`.
    /// - Parameter rounds: ``rounds``, or ``testOnlyRounds`` in tests.
    init(password: String?, rounds: Int = Accounts.rounds) {
        self.rounds = rounds
        var accounts = [String: Account]()
        var passwords = [(String, String)]()
        for username in Self.usernames {
            let password = password ?? Self.randomPassword()
            let salt = (0..<16).map { _ in UInt8.random(in: .min ... .max) }
            accounts[username] = Account(salt: salt, digest: Self.digest(password, salt: salt, rounds: rounds))
            passwords.append((username, password))
        }
        self.accounts = accounts
        self.passwords = passwords
    }

    /// Whether `password` is `username`'s. Takes the same time for a wrong password as a
    /// right one, and for an unknown user as a known one.
    func verify(username: String, password: String) -> Bool {
        let account = accounts[username] ?? Account(salt: Array(repeating: 0, count: 16), digest: Array(repeating: 0xFF, count: 32))
        let candidate = Self.digest(password, salt: account.salt, rounds: rounds)
        var difference: UInt8 = 0
        for (left, right) in zip(candidate, account.digest) { difference |= left ^ right }
        return difference == 0 && accounts[username] != nil
    }

    private static func digest(_ password: String, salt: [UInt8], rounds: Int) -> [UInt8] {
        let key = try? KDF.Insecure.PBKDF2.deriveKey(
            from: Array(password.utf8), salt: salt, using: .sha256, outputByteCount: 32, unsafeUncheckedRounds: rounds)
        // Derivation fails only on bad parameters, which are fixed here; fail closed anyway.
        return key?.withUnsafeBytes { Array($0) } ?? Array(repeating: 0, count: 32)
    }

    private static func randomPassword() -> String {
        let alphabet = Array("abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789")
        return String((0..<12).map { _ in alphabet.randomElement()! })
    }
}
