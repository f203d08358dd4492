// app.css, served at /app.css; embedded so the console reads no file and works offline.

extension Assets {
    /// The page's styles (system fonts only: nothing is fetched from elsewhere).
    static let appCSS = Asset(
        contentType: "text/css; charset=utf-8",
        body: ##"""
            :root { --fg: #1d2330; --muted: #6b7280; --line: #e3e6ea; --ok: #16794c; --bad: #b42318; --warn: #a15c07; --bar: #3b6fd8; }
            * { box-sizing: border-box; }
            body { margin: 0; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: #f6f7f9; }
            header { display: flex; align-items: center; gap: 12px; padding: 10px 20px; background: #fff; border-bottom: 1px solid var(--line); }
            h1 { font-size: 18px; margin: 0; }
            h2 { font-size: 15px; margin: 0 0 10px; }
            h3 { font-size: 13px; margin: 14px 0 4px; }
            main { display: grid; grid-template-columns: 1.3fr 1fr 0.9fr; gap: 16px; padding: 16px 20px; }
            section { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 14px; min-width: 0; }
            footer { padding: 0 20px 16px; }
            .muted { color: var(--muted); font-weight: normal; }
            .badge { padding: 2px 8px; border-radius: 10px; font-size: 12px; background: #eee; }
            .badge[data-state="ok"] { background: #dcf5e7; color: var(--ok); }
            .badge[data-state="degraded"], .badge[data-state="unreachable"] { background: #fde2e1; color: var(--bad); }
            .badge[data-state="starting"], .badge[data-state="stopping"] { background: #fdf0d5; color: var(--warn); }
            #dropzone { border: 2px dashed #c5cad3; border-radius: 8px; padding: 12px; text-align: center; }
            #dropzone.over { border-color: var(--bar); background: #eef3fd; }
            #dropzone p { margin: 6px 0; }
            .pick { color: var(--bar); text-decoration: underline; cursor: pointer; }
            .pick input { display: none; }
            #cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(190px, 1fr)); gap: 10px; margin-top: 12px; }
            .card { border: 1px solid var(--line); border-radius: 6px; padding: 8px; }
            .card .top { display: flex; gap: 8px; align-items: center; }
            .card img.thumb { width: 56px; height: 56px; object-fit: contain; background: #f0f0f0; border-radius: 4px; }
            .card .name { font-size: 11px; color: var(--muted); overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
            .label { font-weight: 600; }
            .card[data-state="rejected"] .label, .feed-item[data-status="rejected"] .label { color: var(--bad); }
            .reason { color: var(--bad); font-size: 12px; }
            .probs { margin-top: 6px; }
            .prob { display: grid; grid-template-columns: 74px 1fr 38px; align-items: center; gap: 4px; font-size: 10px; }
            .prob .bar { height: 7px; background: #eef0f3; border-radius: 2px; overflow: hidden; }
            .prob .bar span { display: block; height: 100%; background: var(--bar); }
            .prob.top .bar span { background: var(--ok); }
            .prob.top > span:first-child { font-weight: 600; }
            #feed { list-style: none; margin: 0; padding: 0; max-height: 78vh; overflow-y: auto; }
            .feed-item { display: flex; gap: 10px; align-items: center; padding: 6px 0; border-bottom: 1px solid var(--line); }
            canvas.seen { width: 56px; height: 56px; image-rendering: pixelated; background: #000; border-radius: 3px; flex: none; }
            .feed-item .meta { font-size: 11px; color: var(--muted); overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
            .feed-item > div { min-width: 0; }
            dl { display: grid; grid-template-columns: 80px 1fr; gap: 3px 8px; margin: 0 0 10px; }
            dt { color: var(--muted); }
            dd { margin: 0; overflow-wrap: anywhere; }
            #reasons { color: var(--bad); margin: 0 0 8px; padding-left: 18px; }
            table { border-collapse: collapse; width: 100%; font-size: 12px; }
            th, td { text-align: right; padding: 2px 6px; border-bottom: 1px solid var(--line); }
            .chart { width: 100%; height: 60px; background: #fafbfc; border: 1px solid var(--line); border-radius: 4px; }
            .chart polyline { fill: none; stroke: var(--bar); stroke-width: 1.5; vector-effect: non-scaling-stroke; }
            @media (max-width: 1100px) { main { grid-template-columns: 1fr; } }
            """##)
}
