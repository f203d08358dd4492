import Foundation

/// Where the repository, its fixtures and the built executables are, as every test target sees them.
public enum TestPaths {
    /// The package root, found from this file's location (Tests/TestSupport/TestPaths.swift; symlinks
    /// resolved, so a development package that links the sources in still finds the repository's files).
    public static let packageRoot: URL = URL(fileURLWithPath: #filePath).resolvingSymlinksInPath()
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    /// Tests/Fixtures.
    public static let fixtures = packageRoot.appendingPathComponent("Tests/Fixtures")

    /// Where `swift build` put the executables (override with FASHIOND_BIN_DIR).
    public static var binaries: URL {
        if let explicit = ProcessInfo.processInfo.environment["FASHIOND_BIN_DIR"] {
            return URL(fileURLWithPath: explicit)
        }
        // The test bundle sits next to the executables it was built with.
        let bundle = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
        if FileManager.default.isExecutableFile(atPath: bundle.appendingPathComponent("fashiond").path) {
            return bundle
        }
        return packageRoot.appendingPathComponent(".build/debug")
    }

    /// The path of the built executable `name` (fashiond, fashionctl, fashion-mock-broker, …).
    public static func binary(_ name: String) -> String { binaries.appendingPathComponent(name).path }
}
