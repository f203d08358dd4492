/// Status line and header fields of one HTTP/1.1 response.
struct HTTPResponseHead: Sendable, Equatable {
    var statusCode: Int
    var reasonPhrase: String
    /// Fields in arrival order; names keep the server's spelling.
    var fields: [Field]

    struct Field: Sendable, Equatable {
        var name: String
        var value: String
    }

    /// All values of the field `name`, compared case-insensitively as HTTP requires.
    func values(of name: String) -> [String] {
        let wanted = name.lowercased()
        return fields.filter { $0.name.lowercased() == wanted }.map(\.value)
    }

    var isSuccess: Bool { (200..<300).contains(statusCode) }
}
