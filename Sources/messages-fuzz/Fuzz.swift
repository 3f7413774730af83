#if DEBUG
    import Crypto
    import Foundation
    @testable import MessagesService

    /// One fuzz input: its first byte picks the decoder (modulo 8: the seeds in tools/fuzz-corpus
    /// start with an ASCII digit, `0` = 48 ≡ 0), the rest is what that decoder reads.
    ///
    /// A decoder must not trap on anything a client can send, and the properties below must hold;
    /// any failure is a `fatalError`, which libFuzzer reports as a crash and saves the input of.
    @_cdecl("LLVMFuzzerTestOneInput")
    public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
        guard let data, size > 0 else { return 0 }
        var input = Input(bytes: ArraySlice(UnsafeBufferPointer(start: data, count: size)))
        switch input.byte() % 8 {
        case 0: cursorText(&input)
        case 1: genuineCursor(&input)
        case 2: inf326Cursor(input.text)
        case 3: createBody(input.data)
        case 4: editBody(input.data)
        case 5:
            attachment(input.text)
            reactionEmoji(input.text)
        case 6:
            duration(input.text)
            traceContext(input.text)
        default: base64AndJWT(input)
        }
        return 0
    }

    /// Fixed keys: cursors are only readable under the key that signed them, so the harness makes
    /// its own (a committed cursor would depend on a secret).
    let key = SymmetricKey(data: Array("messages-fuzz cursor key 0000001".utf8))
    let nextKey = SymmetricKey(data: Array("messages-fuzz cursor key 0000002".utf8))
    let codec = CursorCodec(current: key)
    /// After a rotation: signs with `nextKey`, still reads what `key` signed.
    let rotated = CursorCodec(current: nextKey, previous: key)
    /// After the old key is dropped.
    let nextOnly = CursorCodec(current: nextKey)

    /// URL hosts allowed in attachment paths, so that the https branch is reachable.
    let hosts = ["cdn.example.com", "files.example.com:8443"]
    let validator: MessageValidator = {
        var limits = MessageLimits()
        limits.attachmentURLHosts = hosts
        return MessageValidator(limits: limits)
    }()

    /// Arbitrary text as a v1 cursor: never a trap; a cursor of one page sequence that decodes
    /// (only a signed one can) names a valid seq, re-encodes to it, and is refused by another
    /// channel or scope (both pages derived from the input).
    func cursorText(_ input: inout Input) {
        let (page, other) = (input.page(), input.page())
        let text = input.text
        let cursors = page.cursors()
        guard let seq = cursors.seq(of: text) else { return }
        require((0...CursorCodec.maxSeq).contains(seq), "decoded seq \(seq) out of range")
        require(cursors.seq(of: cursors.encode(seq)) == seq, "seq \(seq) does not survive encode/decode")
        requireRefused(text, by: other, unlessSameAs: page)
    }

    /// A real cursor, then edited as the rest of the input says (pairs of position, byte; an odd
    /// last byte truncates). Random text almost never carries a valid tag, so this is how the
    /// decode-success paths get exercised.
    func genuineCursor(_ input: inout Input) {
        let seq = input.int64()
        let (page, other) = (input.page(), input.page())
        let cursors = page.cursors()
        let cursor = cursors.encode(seq)
        let expected = min(max(seq, 0), CursorCodec.maxSeq)
        require(cursors.seq(of: cursor) == expected, "encode(\(seq)) does not decode to \(expected)")
        require(page.cursors(rotated).seq(of: cursor) == expected, "a previous key's cursor is refused after rotation")
        require(page.cursors(nextOnly).seq(of: cursor) == nil, "a dropped key still reads")

        var bytes = Array(cursor.utf8)
        var edits = input.rest[...]
        while let position = edits.popFirst() {
            let index = Int(position) % (bytes.count + 1)
            if let byte = edits.popFirst() {
                if index == bytes.count { bytes.append(byte) } else { bytes[index] = byte }
            } else {
                bytes.removeSubrange(index...)
            }
        }
        let edited = String(decoding: bytes, as: UTF8.self)
        let decoded = cursors.seq(of: edited)
        // An edit that leaves the signed bytes alone (a spare bit of the last character) still
        // reads; any other reading would be a forged position.
        require(decoded == nil || decoded == expected, "cursor \(edited) decodes to \(decoded!), not \(expected)")
        requireRefused(edited, by: other, unlessSameAs: page)
    }

    /// The channel and scope are in the tag: another page's cursors never read this one's.
    func requireRefused(_ cursor: String, by other: Page, unlessSameAs page: Page) {
        guard other != page else { return }
        require(other.cursors().seq(of: cursor) == nil, "cursor \(cursor) of \(page) read by \(other)")
    }

    /// INF326 cursors (`timestamp|uuid`): never a trap; what parses re-makes into the same cursor.
    func inf326Cursor(_ text: String) {
        guard let cursor = INF326Cursor(text) else { return }
        let again = INF326Cursor(INF326Cursor.make(createdAt: cursor.createdAt, id: cursor.messageID))
        require(again == cursor, "INF326 cursor \(text) does not survive make/parse")
    }

    /// A v1 create body, decoded, then every field check run (not only up to the first refusal).
    func createBody(_ data: Data) {
        guard let body = validating({ try JSONBody.decode(CreateMessageBody.self, from: data) }) else { return }
        checkContent(body.content)
        _ = validating { try validator.type(body.type) }
        checkAttachments(body.attachments ?? [])
        _ = validating { try validator.uuid(body.parent_id, field: "parent_id") }
        _ = validating { try validator.idempotencyKey(body.client_message_id, field: "client_message_id") }
    }

    /// A v1 edit body.
    func editBody(_ data: Data) {
        guard let body = validating({ try JSONBody.decode(EditMessageBody.self, from: data) }) else { return }
        if let content = body.content { checkContent(content) }
        if let attachments = body.attachments { checkAttachments(attachments) }
    }

    /// Content the validator accepts is what Postgres and the limits allow.
    func checkContent(_ content: String) {
        guard let accepted = validating({ try validator.content(content) }) else { return }
        let length = accepted.unicodeScalars.count
        require((1...validator.limits.maxContentLength).contains(length), "content of \(length) characters accepted")
        require(!accepted.utf8.contains(0), "content with NUL accepted")
    }

    /// Attachments the validator accepts have paths a browser cannot turn into a script, a
    /// foreign host or a parent directory.
    func checkAttachments(_ attachments: [Attachment]) {
        guard let accepted = validating({ try validator.attachments(attachments) }) else { return }
        require(accepted.count <= validator.limits.maxAttachments, "\(accepted.count) attachments accepted")
        for attachment in accepted { checkAllowedPath(attachment.path) }
    }

    /// The text as an attachment path, a media type, and a whole attachment.
    func attachment(_ text: String) {
        if AttachmentPath.isAllowed(text, urlHosts: hosts) { checkAllowedPath(text) }
        if MediaType.isValid(text) { require(text.contains("/"), "media type \(text) without a subtype") }
        checkAttachments([Attachment(path: text, name: text, mimeType: text, size: Int64(text.utf8.count) - 8)])
    }

    /// Arbitrary text as a reaction's path segment and as decoded text: never a trap; what is
    /// accepted fits the byte limit, is one grapheme cluster or a short code, and reads back the
    /// same from its own percent-encoding.
    func reactionEmoji(_ text: String) {
        for emoji in [ReactionEmoji(percentEncoded: text), ReactionEmoji(text)].compactMap({ $0 }) {
            let value = emoji.text
            require(value.utf8.count <= ReactionEmoji.maxBytes, "emoji \(value) is \(value.utf8.count) bytes")
            require(
                value.count == 1 || (value.hasPrefix(":") && value.hasSuffix(":") && value.allSatisfy(\.isASCII)),
                "emoji \(value) is neither one grapheme cluster nor a short code")
            let scalars = Array(value.unicodeScalars)
            let tags = scalars.filter { (0xE0020...0xE007F).contains($0.value) }
            require(
                tags.isEmpty || (scalars.first?.value == 0x1F3F4 && scalars.last?.value == 0xE007F),
                "emoji \(value) carries tags outside a flag")
            require(scalars.last?.value != 0x200D, "emoji \(value) ends with a joiner")
            require(
                !scalars.contains {
                    ($0.properties.generalCategory == .nonspacingMark && ![0xFE0E, 0xFE0F].contains($0.value)) || $0.value < 0x20
                },
                "emoji \(value) carries a combining mark or a control character")
            let encoded = value.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""
            require(ReactionEmoji(percentEncoded: encoded) == emoji, "emoji \(value) does not read back")
        }
    }

    /// An independent reading of an allowed path, the way a browser parses a link (WHATWG URL:
    /// tabs and newlines dropped, leading spaces and C0 controls trimmed, `\` as `/` in https
    /// URLs), Unicode scalar by scalar: either a relative key with no `//host` and no dot
    /// segment, or https to one of `hosts`.
    func checkAllowedPath(_ path: String) {
        var link = path.unicodeScalars.filter { !["\t", "\n", "\r"].contains($0) }[...]
        link = link.drop { $0.value <= 0x20 }
        let schemeCharacters = CharacterSet.letters.union(.decimalDigits).union(CharacterSet(charactersIn: "+-."))
        if let colon = link.firstIndex(of: ":"), let first = link.first, first.isASCII, first.properties.isAlphabetic,
            link[..<colon].allSatisfy({ $0.isASCII && schemeCharacters.contains($0) })
        {
            let scheme = String(link[..<colon]).lowercased()
            require(scheme == "https", "path \(path) with scheme \(scheme) allowed")
            // The authority: after the slashes, up to the path, query or fragment; the host
            // follows the last `@` and precedes a port.
            let afterScheme = link[link.index(after: colon)...].drop { $0 == "/" || $0 == "\\" }
            let authority = afterScheme.prefix { !["/", "\\", "?", "#"].contains($0) }
            let hostAndPort = authority.split(separator: "@", omittingEmptySubsequences: false).last!
            let host = String(hostAndPort.prefix { $0 != ":" })
            let name = (host.removingPercentEncoding ?? host).lowercased()
            require(hosts.contains { $0.split(separator: ":").first! == name }, "path \(path) reaches host \(name)")
        } else {
            let lead = link.prefix(2)
            require(!(lead.count == 2 && lead.allSatisfy { $0 == "/" || $0 == "\\" }), "path \(path) names a host")
            // URL resolution and file stores split on the characters `/` and `\`, percent-decoded.
            let segments = (path.removingPercentEncoding ?? path).unicodeScalars
                .split(omittingEmptySubsequences: false) { $0 == "/" || $0 == "\\" }
            require(!segments.contains { [".", ".."].contains(String($0)) }, "path \(path) has a dot segment")
        }
    }

    /// `DurationText` (JWT_MAX_TTL and the like): never a trap, at most ten years, and the
    /// number it returns reads back as itself.
    func duration(_ text: String) {
        guard let seconds = DurationText.seconds(text) else { return }
        require((0...10 * 366 * 86_400).contains(seconds), "duration \(text) is \(seconds) s")
        require(DurationText.seconds(String(seconds)) == seconds, "\(seconds) does not read back")
    }

    /// A W3C `traceparent` (the text up to the first newline) with a `tracestate` (the rest):
    /// never a trap; what parses reads back as itself, with ids of lower-case hex, and a kept
    /// state is within its bounds.
    func traceContext(_ text: String) {
        let parts = text.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        guard let context = TraceContext(traceparent: parts[0], tracestate: parts.count > 1 ? parts[1] : nil) else { return }
        require(
            TraceContext(traceparent: context.traceparent, tracestate: context.state) == context, "\(text) does not read back")
        require(context.traceID.utf8.count == 32 && context.parentID.utf8.count == 16, "\(text): id lengths")
        require(
            (context.traceID + context.parentID).utf8.allSatisfy { $0.hexDigitValue != nil && !(65...70).contains($0) },
            "\(text): ids not lower-case hex")
        if let state = context.state { require(state.utf8.count <= 512, "\(text): state too long") }
    }

    /// Base64url both ways, and the `alg` of a token header, read before any signature check.
    func base64AndJWT(_ input: Input) {
        let text = input.text
        if let decoded = Base64URL.decode(text) {
            require(Base64URL.decode(Base64URL.encode(decoded)) == decoded, "\(text) does not round-trip")
        }
        let raw = input.data
        let encoded = Base64URL.encode(raw)
        let alphabet = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
        require(encoded.allSatisfy(alphabet.contains), "encoding \(encoded) is not unpadded base64url")
        require(Base64URL.decode(encoded) == raw, "raw bytes do not round-trip through base64url")

        _ = JWTVerifier.headerAlgorithm(of: text)
        // A header built around the input as `alg` gives back exactly that `alg`.
        let header = try! JSONEncoder().encode(["alg": text, "typ": "JWT"])
        let algorithm = JWTVerifier.headerAlgorithm(of: Base64URL.encode(header) + ".e30.c2ln")
        require(algorithm == text, "alg \(text) read back as \(algorithm ?? "nil")")
    }

    /// Runs one decoding or validation step. A refusal must be a `ValidationFailure` whose field
    /// is named (clients show the message and highlight the field); anything else thrown is a bug.
    func validating<T>(_ step: () throws -> T) -> T? {
        do {
            return try step()
        } catch let failure as ValidationFailure {
            require(!failure.field.isEmpty && !failure.kind.isEmpty, "failure without field or kind: \(failure)")
            require(failure.message.contains(failure.field), "\"\(failure.message)\" does not name \(failure.field)")
            return nil
        } catch {
            fatalError("not a ValidationFailure: \(error)")
        }
    }

    /// A property of the decoders; a failure is reported by libFuzzer as a crash.
    func require(_ condition: Bool, _ property: @autoclosure () -> String) {
        if !condition { fatalError("property failed: \(property())") }
    }

    /// Reads a fuzz input from the front: fixed-size fields (zeros once it runs out), then the rest.
    struct Input {
        var bytes: ArraySlice<UInt8>

        mutating func byte() -> UInt8 { bytes.popFirst() ?? 0 }

        /// Big-endian, so a seed can spell it.
        mutating func int64() -> Int64 { (0..<8).reduce(0) { value, _ in value << 8 | Int64(byte()) } }

        mutating func uuid() -> UUID {
            let bytes = (0..<16).map { _ in byte() }
            return UUID(uuid: bytes.withUnsafeBytes { $0.loadUnaligned(as: uuid_t.self) })
        }

        /// A channel (16 bytes), then a scope byte: timeline, live timeline, or replies to the
        /// root message in the next 16 bytes.
        mutating func page() -> Page {
            let channel = uuid()
            switch byte() % 3 {
            case 0: return Page(channel: channel, scope: .timeline)
            case 1: return Page(channel: channel, scope: .liveTimeline)
            default: return Page(channel: channel, scope: .replies(to: uuid()))
            }
        }

        var rest: [UInt8] { Array(bytes) }
        var data: Data { Data(bytes) }
        /// The rest as a client's string: invalid UTF-8 becomes U+FFFD, as in a decoded request.
        var text: String { String(decoding: bytes, as: UTF8.self) }
    }

    /// One page sequence, which a cursor is bound to: a channel's timeline, its live timeline, or
    /// the replies to one message.
    struct Page: Equatable {
        let channel: UUID
        let scope: MessageScope

        func cursors(_ keys: CursorCodec = codec) -> PageCursors { keys.cursors(channelID: channel, scope: scope) }
    }
#endif
