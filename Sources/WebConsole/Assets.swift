/// One embedded file of the page.
struct Asset: Sendable {
    var contentType: String
    var body: String
}

/// The page's files, compiled into the binary (IndexPage.swift, AppScript.swift, AppStyle.swift), by
/// the URL path they are served at.
enum Assets {
    static let byPath: [String: Asset] = [
        "/": indexHTML, "/index.html": indexHTML, "/app.js": appJS, "/app.css": appCSS,
    ]
}
