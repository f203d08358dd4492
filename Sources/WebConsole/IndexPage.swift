// index.html, served at /index.html and /; embedded so the console reads no file and works offline.

extension Assets {
    /// The page's markup.
    static let indexHTML = Asset(
        contentType: "text/html; charset=utf-8",
        body: ##"""
            <!doctype html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>fashiond</title>
            <link rel="stylesheet" href="/app.css">
            <script src="/app.js" defer></script>
            </head>
            <body>
            <header>
              <h1>fashiond</h1>
              <span id="state" class="badge" data-state="unknown">connecting…</span>
              <span id="daemon-version" class="muted"></span>
            </header>
            <main>
              <section id="send">
                <h2>Send images</h2>
                <div id="dropzone" tabindex="0">
                  <p>Drop PNG or JPEG files here, or <label class="pick">choose files<input id="files" type="file" accept="image/png,image/jpeg" multiple></label></p>
                  <p>Model <select id="model"><option value="">default</option></select></p>
                </div>
                <div id="cards"></div>
              </section>
              <section id="feed-section">
                <h2>Live feed <span class="muted">all results, newest first</span></h2>
                <ol id="feed"></ol>
              </section>
              <section id="status">
                <h2>Status</h2>
                <ul id="reasons"></ul>
                <dl id="facts">
                  <dt>Backend</dt><dd id="status-backend">–</dd>
                  <dt>Broker</dt><dd id="status-broker">–</dd>
                  <dt>Topic</dt><dd id="status-topic">–</dd>
                  <dt>Model</dt><dd id="status-model">–</dd>
                  <dt>Messages</dt><dd id="status-messages">–</dd>
                  <dt>Journal</dt><dd id="status-journal">–</dd>
                </dl>
                <table id="partitions"><thead><tr><th>Partition</th><th>Lag</th><th>Consumed</th><th>Paused</th></tr></thead><tbody></tbody></table>
                <h3>Throughput <span class="muted">images/s, last 5 min</span> <span id="throughput-now"></span></h3>
                <svg id="chart-throughput" class="chart" viewBox="0 0 300 60" preserveAspectRatio="none"><polyline points=""/></svg>
                <h3>Mean batch size <span class="muted">per interval</span> <span id="batch-now"></span></h3>
                <svg id="chart-batch" class="chart" viewBox="0 0 300 60" preserveAspectRatio="none"><polyline points=""/></svg>
              </section>
            </main>
            <footer class="muted">Served by <code>fashionctl web</code> on this machine; talks to fashiond through its control socket with your permissions.</footer>
            </body>
            </html>
            """##)
}
