extension StringProtocol {
    /// Drops leading and trailing Unicode white space and line breaks: Foundation's
    /// `trimmingCharacters(in: .whitespacesAndNewlines)` (the same scalars, U+200B included as
    /// CoreFoundation does), which FoundationEssentials lacks.
    package func trimmingWhitespace() -> String {
        trimming { $0.properties.isWhitespace || $0 == "\u{200B}" }
    }

    /// Drops leading and trailing spaces and tabs (Unicode category Zs, U+0009 and U+200B), keeping line
    /// breaks: Foundation's `trimmingCharacters(in: .whitespaces)`.
    package func trimmingSpaces() -> String {
        trimming { $0 == "\t" || $0 == "\u{200B}" || $0.properties.generalCategory == .spaceSeparator }
    }

    private func trimming(where isTrimmed: (Unicode.Scalar) -> Bool) -> String {
        let scalars = unicodeScalars
        guard let first = scalars.firstIndex(where: { !isTrimmed($0) }),
            let last = scalars.lastIndex(where: { !isTrimmed($0) })
        else { return "" }
        return String(String.UnicodeScalarView(scalars[first...last]))
    }
}
