import Foundation

/// The entry point of `messages-fuzz`, in both of its builds.
///
/// SwiftPM links every debug executable with its entry point renamed (`messages_fuzz_main`) and
/// `main` pointing at it, so libFuzzer's own `main` never runs, even under `-sanitize=fuzzer`:
/// this `@main` is always the program's start. Built by tools/fuzz.sh (`-DLIBFUZZER`), it hands the
/// command line to libFuzzer's driver; in an ordinary build it replays the inputs it is given
/// (files, or directories of them) through the same `fuzz` function, so a crash found by the
/// fuzzer can be rerun and debugged without the sanitizer build.
@main
struct MessagesFuzz {
    static func main() {
        #if !DEBUG
            // The harness reaches internal APIs through `@testable import`, which needs a debug build.
            FileHandle.standardError.write(Data("messages-fuzz: only debug builds carry the harness\n".utf8))
            exit(2)
        #elseif LIBFUZZER
            var argc = CommandLine.argc
            var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
            // A closure, not `fuzz` itself: converting the `@_cdecl` function to a C pointer here
            // emits a second `LLVMFuzzerTestOneInput` into this file's object (a duplicate symbol).
            exit(LLVMFuzzerRunDriver(&argc, &argv) { data, size in fuzz(data, size) })
        #else
            let files = CommandLine.arguments.dropFirst().flatMap(inputFiles)
            guard !files.isEmpty else {
                print("usage: messages-fuzz FILE|DIRECTORY... (replays inputs; tools/fuzz.sh builds the fuzzer)")
                exit(2)
            }
            for file in files {
                guard let input = FileManager.default.contents(atPath: file) else {
                    print("messages-fuzz: cannot read \(file)")
                    exit(2)
                }
                _ = input.withUnsafeBytes { fuzz($0.bindMemory(to: UInt8.self).baseAddress, $0.count) }
            }
            print("messages-fuzz: \(files.count) inputs replayed, no property failed")
        #endif
    }

    /// `path` itself, or the regular files directly inside it when it is a directory.
    static func inputFiles(_ path: String) -> [String] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: path) else { return [path] }
        return names.sorted().map { "\(path)/\($0)" }.filter { name in
            var isDirectory: ObjCBool = false
            return FileManager.default.fileExists(atPath: name, isDirectory: &isDirectory) && !isDirectory.boolValue
        }
    }
}

#if LIBFUZZER
    /// libFuzzer's driver (compiler-rt, linked by `-sanitize=fuzzer`): parses the libFuzzer flags
    /// in `argv` and runs `callback` on each input. Declared with the C calling convention, which
    /// `@_extern(c)` gives (experimental feature `Extern`, enabled for this target in Package.swift).
    @_extern(c, "LLVMFuzzerRunDriver")
    func LLVMFuzzerRunDriver(
        _ argc: UnsafeMutablePointer<CInt>,
        _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
        _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
    ) -> CInt
#endif
