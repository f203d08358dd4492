#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A one-line description of `error` for messages, standing in for Foundation's `localizedDescription`
/// (absent from FoundationEssentials): a `LocalizedError`'s own description, the C library's text for
/// file-system and POSIX errors (`No such file or directory`), else the error as Swift prints it.
package func errorMessage(_ error: any Error) -> String {
    if let description = (error as? any LocalizedError)?.errorDescription { return description }
    if let posix = error as? POSIXError { return String(cString: strerror(posix.code.rawValue)) }
    if let cocoa = error as? CocoaError {
        if let posix = cocoa.underlying as? POSIXError { return String(cString: strerror(posix.code.rawValue)) }
        return "file operation failed (CocoaError \(cocoa.code.rawValue))"
    }
    return String(describing: error)
}
