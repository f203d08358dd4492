import TestSupport
import Testing

@testable import Shared

@Suite("Percent-encoding", .tags(.unit))
struct PercentEncodingTests {
    @Test("unreserved characters stay, everything else becomes %XX of its UTF-8 bytes")
    func encodes() {
        #expect(PercentEncoding.encode("AZaz09-._~") == "AZaz09-._~")
        #expect(PercentEncoding.encode("a b+c/d?e&f=g%h#") == "a%20b%2Bc%2Fd%3Fe%26f%3Dg%25h%23")
        #expect(PercentEncoding.encode("é€") == "%C3%A9%E2%82%AC")
        #expect(PercentEncoding.encode("urn:ietf:params") == "urn%3Aietf%3Aparams")
        #expect(PercentEncoding.encode("") == "")
    }

    @Test("decoding undoes encoding, for any text", arguments: ["", "plain", "a b+c/d?%", "é€\u{0}\n", "🧥 coat"])
    func roundTrips(text: String) throws {
        #expect(try PercentEncoding.decode(PercentEncoding.encode(text), plusIsSpace: true) == text)
        #expect(try PercentEncoding.decode(PercentEncoding.encode(text), plusIsSpace: false) == text)
    }

    @Test("plus is a space only in query and form text; lower-case hex is accepted")
    func plusAndCase() throws {
        #expect(try PercentEncoding.decode("a+b%2b", plusIsSpace: true) == "a b+")
        #expect(try PercentEncoding.decode("a+b%2b", plusIsSpace: false) == "a+b+")
        #expect(try PercentEncoding.decode("%c3%a9", plusIsSpace: true) == "é")
        #expect(try PercentEncoding.decode("100%25", plusIsSpace: false) == "100%")
    }

    @Test("a malformed escape or bytes that are not UTF-8 are refused")
    func refuses() {
        for text in ["%", "%4", "%G1", "a%2", "%%41"] {
            #expect(throws: PercentEncoding.DecodingError.malformedEscape) {
                try PercentEncoding.decode(text, plusIsSpace: true)
            }
        }
        #expect(throws: PercentEncoding.DecodingError.notUTF8) {
            try PercentEncoding.decode("%FF%FE", plusIsSpace: true)
        }
        #expect(throws: PercentEncoding.DecodingError.notUTF8) { try PercentEncoding.decode("%C3", plusIsSpace: false) }
    }
}
