import Testing

/// What a test needs, as Swift Testing tags. The tags are the one way the project slices its tests:
/// `make check` runs `unit` without `slow`, and `scripts/test-select.py` turns any tag expression into
/// `swift test --filter/--skip` arguments (Swift Testing 6.3 cannot select by tag on the command line).
///
/// The convention, for every new suite:
/// - every top-level `@Suite` carries exactly one of `unit`, `broker`, `emulator`, `systemd`, `root`:
///   the most demanding thing any of its tests needs (`@Suite("…", .tags(.unit))`);
/// - add `slow` to a suite or a single test that takes more than about ten seconds on a 2-core machine;
/// - a nested suite inherits its parent's tags (add its own where it needs more than the parent).
///
/// Test targets depend on `TestSupport` for these and `import TestSupport`.
extension Tag {
    /// In-process only: no broker, no emulator, no other program, no root. What `make check` runs.
    @Tag public static var unit: Self
    /// Needs a Kafka broker: librdkafka's mock cluster, in process or as `fashion-mock-broker`, and for
    /// end-to-end tests the built `fashiond`/`fashionctl` driven as a user would.
    @Tag public static var broker: Self
    /// Needs Google's Pub/Sub emulator (Java) and the Python client (`make pubsub-check pubsub-venv`).
    @Tag public static var emulator: Self
    /// Boots systemd in systemd-nspawn (root, `systemd-container`).
    @Tag public static var systemd: Self
    /// Needs root for something else: mounting a tmpfs, creating users and groups.
    @Tag public static var root: Self
    /// Takes more than about ten seconds; left out of `make check`.
    @Tag public static var slow: Self
}
