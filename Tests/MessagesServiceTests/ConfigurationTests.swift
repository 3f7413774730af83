import Foundation
import Testing

@testable import MessagesService

/// `ServiceConfiguration(environment:)`: every variable read, its range enforced, and every
/// refusal naming the variable. No server needed.
@Suite struct ConfigurationTests {
    /// A variable with a range, a value inside it and where that value lands.
    struct Bounded: CustomTestStringConvertible, Sendable {
        let variable: String
        let inRange: String
        let outOfRange: [String]
        let read: @Sendable (ServiceConfiguration) -> String

        var testDescription: String { variable }
    }

    static let bounded: [Bounded] = [
        Bounded(variable: "PORT", inRange: "9090", outOfRange: ["0", "65536"]) { "\($0.port)" },
        Bounded(variable: "PG_POOL_SIZE", inRange: "17", outOfRange: ["0", "257"]) { "\($0.postgresPoolSize)" },
        Bounded(variable: "PG_POOL_TIMEOUT_MS", inRange: "1500", outOfRange: ["0", "600001"]) {
            "\($0.postgresPoolTimeout)"
        },
        Bounded(variable: "REDIS_POOL_SIZE", inRange: "3", outOfRange: ["0", "257"]) { "\($0.redisPoolSize)" },
        Bounded(variable: "REDIS_COMMAND_TIMEOUT_MS", inRange: "40", outOfRange: ["0", "60001"]) {
            "\($0.redisCommandTimeout)"
        },
        Bounded(variable: "REDIS_BREAKER_FAILURES", inRange: "7", outOfRange: ["0", "10001"]) {
            "\($0.redisBreaker.failureThreshold)"
        },
        Bounded(variable: "AMQP_HEARTBEAT_SECONDS", inRange: "0", outOfRange: ["3", "3601", "-1"]) {
            "\($0.amqpHeartbeat)"
        },
        Bounded(variable: "OUTBOX_BATCH_SIZE", inRange: "250", outOfRange: ["0", "1001"]) { "\($0.outbox.batchSize)" },
        Bounded(variable: "TRUSTED_PROXY_HOPS", inRange: "2", outOfRange: ["-1", "11"]) { "\($0.trustedProxyHops)" },
        Bounded(variable: "HTTP_HEADER_TIMEOUT_MS", inRange: "2500", outOfRange: ["99", "600001"]) {
            "\($0.httpHeaderTimeout)"
        },
        Bounded(variable: "MAX_CONTENT_LENGTH", inRange: "100", outOfRange: ["0", "20001"]) {
            "\($0.limits.maxContentLength)"
        },
        Bounded(variable: "ERROR_RETENTION_DAYS", inRange: "2", outOfRange: ["0", "3651"]) {
            "\($0.errorJournal.retention)"
        },
        Bounded(variable: "RATE_LIMIT_RPS", inRange: "0", outOfRange: ["-1", "1000001"]) { "\($0.rateLimit.rate)" },
        Bounded(variable: "TIMELINE_CACHE_SIZE", inRange: "500", outOfRange: ["1", "100001"]) {
            "\($0.timelineCache.capacity)"
        },
        Bounded(variable: "TIMELINE_HOT_PAGES_MB", inRange: "3", outOfRange: ["-1", "4097"]) {
            "\($0.timelineCache.hotPageBytes)"
        },
        Bounded(variable: "JWT_MAX_TTL", inRange: "2h", outOfRange: ["59", "2y", "366d"]) { "\($0.jwtMaxTTL)" },
        Bounded(variable: "SHUTDOWN_DRAIN_MS", inRange: "1500", outOfRange: ["-5", "600001"]) { "\($0.shutdownDrain)" },
    ]

    /// What no integer variable may accept: none of these may trap, and each is refused by name.
    static let notIntegers = ["", " 5", "5 ", "1e3", "0x10", "9223372036854775808", "-9223372036854775809", "٣", "5\0"]

    @Test(arguments: bounded)
    func aBoundedVariableIsReadInItsRangeAndRefusedByNameOutsideIt(_ variable: Bounded) throws {
        let defaults = ServiceConfiguration()
        let configured = try ServiceConfiguration(environment: [variable.variable: variable.inRange])
        #expect(variable.read(configured) != variable.read(defaults), "\(variable.variable)=\(variable.inRange) changed nothing")
        for value in variable.outOfRange + Self.notIntegers {
            let error = #expect(throws: ConfigurationError.self) {
                try ServiceConfiguration(environment: [variable.variable: value])
            }
            #expect(error?.variable == variable.variable, "\(variable.variable)=\(value.debugDescription)")
        }
    }

    @Test func unsetVariablesKeepTheDocumentedDefaults() throws {
        let configuration = try ServiceConfiguration(environment: [:])
        #expect(configuration == ServiceConfiguration())
        #expect(configuration.port == 8080)
        #expect(configuration.authMode == .jwt)
        #expect(configuration.effectiveINF326Auth == .jwt)
        #expect(configuration.jwtMaxTTL == .seconds(86_400))
        #expect(configuration.redis != nil && configuration.amqp != nil)
        #expect(configuration.cursorSecret == nil)
    }

    @Test func emptyURLsTurnTheirPartOffAndBadOnesAreRefusedByName() throws {
        let off = try ServiceConfiguration(environment: ["REDIS_URL": "", "AMQP_URL": "", "ALERT_WEBHOOK_URL": ""])
        #expect(off.redis == nil)
        #expect(off.amqp == nil)
        #expect(off.alertWebhook == nil)
        for (variable, value) in [
            ("DATABASE_URL", "mysql://db/messages"), ("DATABASE_URL", ""), ("REDIS_URL", "http://cache:6379"),
            ("AMQP_URL", "amqps//broker"), ("ALERT_WEBHOOK_URL", "ftp://hooks.example/x"),
        ] {
            let error = #expect(throws: ConfigurationError.self) { try ServiceConfiguration(environment: [variable: value]) }
            #expect(error?.variable == variable)
        }
    }

    @Test func secretsAreLongEnoughAndComeInTheRightCombinations() throws {
        let strong = String(repeating: "k", count: 32)
        let signed = try ServiceConfiguration(environment: ["CURSOR_SECRET": strong, "CURSOR_SECRET_PREVIOUS": strong + "old"])
        #expect(signed.cursorSecret == strong)
        #expect(signed.cursorPreviousSecret == strong + "old")
        let refused: [([String: String], String)] = [
            (["CURSOR_SECRET": String(strong.dropLast())], "CURSOR_SECRET"),
            (["CURSOR_SECRET_PREVIOUS": strong], "CURSOR_SECRET"),
            (["JWT_SECRET": "short"], "JWT_SECRET"),
            (["JWT_SECRET": strong, "JWT_PUBLIC_KEY_FILE": "/etc/key.pem"], "JWT_SECRET"),
            (["JWT_PUBLIC_KEY_FILE": "/nonexistent/key.pem"], "JWT_PUBLIC_KEY_FILE"),
        ]
        for (environment, variable) in refused {
            let error = #expect(throws: ConfigurationError.self) { try ServiceConfiguration(environment: environment) }
            #expect(error?.variable == variable, "\(environment.keys.sorted())")
        }
    }

    @Test func choicesListWhatIsAllowed() throws {
        let configuration = try ServiceConfiguration(
            environment: ["AUTH_MODE": "header", "INF326_AUTH": "JWT", "LOG_FORMAT": "text", "LOG_LEVEL": "debug"]
        )
        #expect(configuration.authMode == .header)
        #expect(configuration.effectiveINF326Auth == .jwt)
        #expect(configuration.logFormat == .text)
        #expect(configuration.logLevel == .debug)
        let error = #expect(throws: ConfigurationError.self) { try ServiceConfiguration(environment: ["AUTH_MODE": "none"]) }
        #expect(error?.variable == "AUTH_MODE")
        #expect(error?.problem.contains("jwt") == true && error?.problem.contains("header") == true)
    }

    @Test func listsAndNamesAreCheckedWhereTheyAreRead() throws {
        let hosts = try ServiceConfiguration(environment: ["ATTACHMENT_URL_HOSTS": " Files.Example.com, cdn.example.com:8443 ,"])
        #expect(hosts.limits.attachmentURLHosts == ["cdn.example.com:8443", "files.example.com"])
        let refused: [(String, String)] = [
            ("ATTACHMENT_URL_HOSTS", "files.example.com,https://evil"), ("LEGACY_QUEUE", "amq.gen-1"),
            ("LEGACY_QUEUE", String(repeating: "q", count: 256)), ("INF326_API_ENABLED", "maybe"),
        ]
        for (variable, value) in refused {
            let error = #expect(throws: ConfigurationError.self) { try ServiceConfiguration(environment: [variable: value]) }
            #expect(error?.variable == variable, "\(variable)=\(value)")
        }
        #expect(try ServiceConfiguration(environment: ["LEGACY_QUEUE": ""]).outbox.legacyQueue == nil)
        #expect(try ServiceConfiguration(environment: ["INF326_API_ENABLED": "off"]).inf326Enabled == false)
    }
}
