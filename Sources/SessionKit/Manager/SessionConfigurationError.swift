/// A setting SessionKit refuses at start-up, with the setting's name.
public struct SessionConfigurationError: Error, Sendable, CustomStringConvertible {
    /// The setting at fault, as a path from ``SessionConfiguration`` (`cookie.domain`).
    public var setting: String
    /// Why it cannot work.
    public var message: String

    /// An error about `setting`, saying `message`.
    public init(setting: String, message: String) {
        self.setting = setting
        self.message = message
    }

    /// The setting and why.
    public var description: String { "invalid session setting \(setting): \(message)" }
}
