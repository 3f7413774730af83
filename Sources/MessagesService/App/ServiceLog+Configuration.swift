extension ServiceLog {
    /// The log the configuration asks for (`LOG_LEVEL`, `LOG_FORMAT`, `ERROR_JOURNAL_QUEUE`,
    /// `ALERT_WEBHOOK_URL`, ...).
    public init(configuration: ServiceConfiguration, output: @escaping JSONLogHandler.Output = JSONLogHandler.standardOutput) {
        self.init(
            level: configuration.logLevel, format: configuration.logFormat,
            journalCapacity: configuration.errorJournal.capacity, alertWebhook: configuration.alertWebhook,
            version: serviceVersion, output: output
        )
    }
}
