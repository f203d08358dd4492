// app.js, served at /app.js; embedded so the console reads no file and works offline.

extension Assets {
    /// The page's script: sending, the live feed and the status panel, polling the console's /api/*.
    static let appJS = Asset(
        contentType: "text/javascript; charset=utf-8",
        body: ##"""
            // fashionctl web: the page. Plain JavaScript, no dependencies; every call goes to the console's
            // own /api/*, which forwards it to fashiond's control socket.
            "use strict";

            const FEED_MAX = 100;
            const HISTORY_SECONDS = 300;
            const el = (id) => document.getElementById(id);
            const state = {
              cursor: null,            // sequence of the newest result shown
              pending: new Map(),      // request_id -> card waiting for its result
              recent: new Map(),       // request_id -> record, for results that beat their POST's answer
              labels: {},              // model name -> class labels
              models: [],
              defaultModel: "",
              history: [],             // status samples for the charts
            };

            async function api(path, options) {
              const response = await fetch(path, options);
              const type = response.headers.get("content-type") || "";
              const body = type.startsWith("application/json") ? await response.json() : await response.arrayBuffer();
              if (!response.ok) {
                const error = new Error(body && body.error ? body.error.message : "HTTP " + response.status);
                error.code = body && body.error ? body.error.code : "http_" + response.status;
                error.status = response.status;
                throw error;
              }
              return body;
            }

            function node(tag, className, text) {
              const n = document.createElement(tag);
              if (className) n.className = className;
              if (text !== undefined) n.textContent = text;
              return n;
            }

            function percent(x) { return (x * 100).toFixed(1) + "%"; }

            // ---- models

            async function loadModels() {
              try {
                const { models } = await api("/api/models");
                state.models = models;
                const select = el("model");
                for (const m of models) {
                  state.labels[m.name] = m.labels;
                  if (m.default) state.defaultModel = m.name;
                  const option = node("option", "", m.name + " " + m.version + (m.default ? " (default)" : ""));
                  option.value = m.name;
                  select.appendChild(option);
                }
              } catch (e) { /* the status panel reports an unreachable daemon */ }
            }

            // ---- sending

            function probabilityChart(record) {
              const box = node("div", "probs");
              const names = state.labels[record.model] || state.labels[state.defaultModel] || [];
              (record.probabilities || []).forEach((p, i) => {
                const row = node("div", "prob" + (i === record.label_index ? " top" : ""));
                row.appendChild(node("span", "", names[i] || String(i)));
                const bar = node("div", "bar");
                const fill = node("span");
                fill.style.width = Math.max(0, Math.min(100, p * 100)).toFixed(1) + "%";
                bar.appendChild(fill);
                row.appendChild(bar);
                row.appendChild(node("span", "", percent(p)));
                box.appendChild(row);
              });
              return box;
            }

            function fillCard(card, record) {
              const result = card.querySelector(".result");
              result.textContent = "";
              result.classList.remove("muted");
              if (record.status === "ok") {
                card.dataset.state = "done";
                const line = node("div");
                line.appendChild(node("span", "label", record.label));
                line.appendChild(node("span", "confidence muted", " " + percent(record.confidence)));
                result.appendChild(line);
                result.appendChild(probabilityChart(record));
              } else {
                card.dataset.state = "rejected";
                result.appendChild(node("div", "label", "rejected"));
                result.appendChild(node("div", "reason", (record.reason_code || "") + ": " + (record.reason || "")));
              }
            }

            function sendFiles(files) {
              const model = el("model").value;
              for (const file of files) {
                const card = node("div", "card");
                card.dataset.state = "sending";
                const top = node("div", "top");
                const thumb = node("img", "thumb");
                thumb.alt = file.name;
                thumb.src = URL.createObjectURL(file);
                top.appendChild(thumb);
                const info = node("div");
                info.appendChild(node("div", "name", file.name));
                info.appendChild(node("div", "result muted", "sending…"));
                top.appendChild(info);
                card.appendChild(top);
                el("cards").prepend(card);
                const query = model ? "?model=" + encodeURIComponent(model) : "";
                api("/api/images" + query, { method: "POST", body: file, headers: { "Content-Type": file.type || "application/octet-stream" } })
                  .then((answer) => {
                    card.dataset.requestId = answer.request_id;
                    card.dataset.state = "waiting";
                    card.querySelector(".result").textContent = "waiting for the result…";
                    const early = state.recent.get(answer.request_id);
                    if (early) fillCard(card, early); else state.pending.set(answer.request_id, card);
                  })
                  .catch((error) => {
                    card.dataset.state = "rejected";
                    const result = card.querySelector(".result");
                    result.textContent = "";
                    result.classList.remove("muted");
                    result.appendChild(node("div", "label", "not sent"));
                    result.appendChild(node("div", "reason", error.code + ": " + error.message));
                  });
              }
            }

            function setUpSending() {
              const input = el("files");
              input.addEventListener("change", () => { sendFiles(Array.from(input.files)); input.value = ""; });
              const zone = el("dropzone");
              zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
              zone.addEventListener("dragleave", () => zone.classList.remove("over"));
              zone.addEventListener("drop", (e) => {
                e.preventDefault();
                zone.classList.remove("over");
                sendFiles(Array.from(e.dataTransfer.files).filter((f) => /image\/(png|jpeg)/.test(f.type)));
              });
            }

            // ---- live feed

            async function drawInput(canvas, requestID) {
              try {
                const bytes = new Uint8Array(await api("/api/inputs/" + encodeURIComponent(requestID)));
                if (bytes.length !== 784) return;
                const context = canvas.getContext("2d");
                const image = context.createImageData(28, 28);
                for (let i = 0; i < 784; i++) {
                  image.data[i * 4] = image.data[i * 4 + 1] = image.data[i * 4 + 2] = bytes[i];
                  image.data[i * 4 + 3] = 255;
                }
                context.putImageData(image, 0, 0);
                canvas.dataset.drawn = "true";
              } catch (e) {
                canvas.title = "the daemon no longer keeps this input";
              }
            }

            function feedItem(record) {
              const item = node("li", "feed-item");
              item.dataset.requestId = record.request_id;
              item.dataset.status = record.status;
              item.dataset.seq = record.seq;
              const canvas = node("canvas", "seen");
              canvas.width = 28;
              canvas.height = 28;
              canvas.title = "what the model saw (28×28 normalised input)";
              item.appendChild(canvas);
              const text = node("div");
              const line = node("div");
              if (record.status === "ok") {
                line.appendChild(node("span", "label", record.label));
                line.appendChild(node("span", "muted", " " + percent(record.confidence) + " · " + (record.model || "")));
              } else {
                line.appendChild(node("span", "label", "rejected"));
                line.appendChild(node("span", "reason", " " + (record.reason_code || "")));
              }
              text.appendChild(line);
              const when = new Date(record.completed_at_ms).toLocaleTimeString();
              text.appendChild(node("div", "meta", "#" + record.seq + " · " + when + " · " + record.request_id));
              item.appendChild(text);
              if (record.status === "ok") drawInput(canvas, record.request_id);
              return item;
            }

            function showRecords(records) {
              const feed = el("feed");
              for (const record of records) {
                state.cursor = Math.max(state.cursor || 0, record.seq);
                feed.prepend(feedItem(record));
                const card = state.pending.get(record.request_id);
                if (card) { fillCard(card, record); state.pending.delete(record.request_id); }
                state.recent.set(record.request_id, record);
                if (state.recent.size > 1000) state.recent.delete(state.recent.keys().next().value);
              }
              while (feed.children.length > FEED_MAX) feed.lastChild.remove();
            }

            async function pollFeed() {
              try {
                const path = state.cursor === null ? "/api/results?last=20" : "/api/results?after=" + state.cursor + "&limit=200";
                const records = await api(path);
                if (state.cursor === null) state.cursor = 0;
                showRecords(records);
              } catch (e) { /* shown by the status panel */ }
              setTimeout(pollFeed, 700);
            }

            // ---- status

            function chart(svg, values) {
              const line = svg.querySelector("polyline");
              if (values.length < 2) { line.setAttribute("points", ""); return; }
              const max = Math.max(1, ...values);
              const step = 300 / (values.length - 1);
              line.setAttribute("points", values.map((v, i) => (i * step).toFixed(1) + "," + (58 - (v / max) * 56).toFixed(1)).join(" "));
            }

            function renderStatus(s) {
              const badge = el("state");
              badge.dataset.state = s.state;
              badge.textContent = s.state;
              el("daemon-version").textContent = "fashiond " + s.version + " · pid " + s.pid;
              const reasons = el("reasons");
              reasons.textContent = "";
              for (const reason of s.reasons) reasons.appendChild(node("li", "", reason));
              el("status-backend").textContent = s.backend;
              el("status-broker").textContent = s.bootstrap || "–";
              el("status-topic").textContent = s.topic + (s.group_id ? " (group " + s.group_id + ")" : "");
              const info = state.models.find((m) => m.name === s.default_model);
              el("status-model").textContent = s.default_model + (info ? " " + info.version : "");
              el("status-messages").textContent = s.consumed + " consumed, " + s.predicted + " predicted, " + s.rejected + " rejected";
              el("status-journal").textContent = "last seq " + s.last_seq;
              const body = el("partitions").querySelector("tbody");
              body.textContent = "";
              for (const p of s.partitions.slice().sort((a, b) => a.partition - b.partition)) {
                const row = node("tr");
                row.dataset.partition = p.partition;
                for (const v of [p.partition, p.lag === undefined || p.lag === null ? "–" : p.lag, p.consumed, p.paused ? "yes" : "no"]) {
                  row.appendChild(node("td", "", String(v)));
                }
                body.appendChild(row);
              }
              const now = Date.now() / 1000;
              const stages = s.stages || {};
              state.history.push({ t: now, ips: s.images_per_second, batches: stages.batches || 0, images: stages.batched_images || 0 });
              state.history = state.history.filter((h) => h.t > now - HISTORY_SECONDS);
              chart(el("chart-throughput"), state.history.map((h) => h.ips));
              const batchSizes = [];
              for (let i = 1; i < state.history.length; i++) {
                const db = state.history[i].batches - state.history[i - 1].batches;
                batchSizes.push(db > 0 ? (state.history[i].images - state.history[i - 1].images) / db : 0);
              }
              chart(el("chart-batch"), batchSizes);
              el("throughput-now").textContent = s.images_per_second.toFixed(1);
              const lastBatch = batchSizes.filter((b) => b > 0).pop();
              el("batch-now").textContent = (lastBatch || s.mean_batch_size).toFixed(1);
            }

            async function pollStatus() {
              try {
                renderStatus(await api("/api/status"));
              } catch (e) {
                const badge = el("state");
                badge.dataset.state = "unreachable";
                badge.textContent = "fashiond unreachable";
                el("reasons").textContent = "";
                el("reasons").appendChild(node("li", "", e.message));
              }
              setTimeout(pollStatus, 2000);
            }

            document.addEventListener("DOMContentLoaded", async () => {
              setUpSending();
              await loadModels();
              pollStatus();
              pollFeed();
            });
            """##)
}
