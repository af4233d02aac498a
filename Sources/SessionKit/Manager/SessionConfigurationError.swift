/// A setting SessionKit refuses at start-up, with the setting's name.
public struct SessionConfigurationError: Error, Sendable, CustomStringConvertible {
    /// The setting at fault, as a path from ``SessionConfiguration`` (`cookie.domain`).
    public var setting: String
    public var message: String

    public init(setting: String, message: String) {
        self.setting = setting
        self.message = message
    }

    public var description: String { "invalid session setting \(setting): \(message)" }
}
