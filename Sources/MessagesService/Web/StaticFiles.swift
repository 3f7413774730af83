import Crypto
import Foundation
import Hummingbird

/// The files of one folder of the module's resources (`web/app`, `web/docs`), read into memory the
/// first time the folder is asked for. The names are that fixed set: a request path is only ever
/// looked up in it, so no path a client sends reaches the file system.
struct StaticFiles: Sendable {
    struct File: Sendable {
        let body: ByteBuffer
        let contentType: String
        /// A strong validator of the content, so browsers revalidate with a cheap 304.
        let etag: String
    }

    let files: [String: File]

    /// The chat page (`WEB_CLIENT`).
    static let app = StaticFiles(resourceFolder: "web/app")
    /// The API reference: Swagger UI and its initializer.
    static let docs = StaticFiles(resourceFolder: "web/docs")

    init(resourceFolder: String) {
        var files: [String: File] = [:]
        if let root = Bundle.module.resourceURL?.appendingPathComponent(resourceFolder, isDirectory: true),
            let walk = FileManager.default.enumerator(at: root, includingPropertiesForKeys: [.isRegularFileKey])
        {
            let prefix = root.standardizedFileURL.path + "/"
            for case let url as URL in walk {
                guard (try? url.resourceValues(forKeys: [.isRegularFileKey]))?.isRegularFile == true,
                    let type = Self.contentType(of: url.pathExtension), let data = try? Data(contentsOf: url)
                else { continue }
                let name = String(url.standardizedFileURL.path.dropFirst(prefix.count))
                let digest = SHA256.hash(data: data).prefix(12).map { String(format: "%02x", $0) }.joined()
                files[name] = File(body: ByteBuffer(bytes: data), contentType: type, etag: "\"\(digest)\"")
            }
        }
        self.files = files
    }

    /// Served types only: a file of another kind (a licence text, a note) stays unserved.
    static func contentType(of fileExtension: String) -> String? {
        switch fileExtension {
        case "html": "text/html; charset=utf-8"
        case "js": "text/javascript; charset=utf-8"
        case "css": "text/css; charset=utf-8"
        case "png": "image/png"
        case "svg": "image/svg+xml"
        case "txt": "text/plain; charset=utf-8"
        default: nil
        }
    }

    /// The file named `name` (a path relative to the folder), a 304 when the client's copy is
    /// current, or nil when there is no such file.
    func response(for name: String, request: Request, securityPolicy: String) -> Response? {
        guard let file = files[name] else { return nil }
        var headers: HTTPFields = [
            .contentType: file.contentType,
            .eTag: file.etag,
            // Revalidate every time: a new release changes the files behind the same names.
            .cacheControl: "no-cache",
            .contentSecurityPolicy: securityPolicy,
            .xContentTypeOptions: "nosniff",
        ]
        if request.headers[.ifNoneMatch] == file.etag {
            headers[.contentType] = nil
            return Response(status: .notModified, headers: headers)
        }
        headers[.contentLength] = String(file.body.readableBytes)
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: file.body))
    }
}
