/* bradley serve: the four pages in plain JavaScript (no build step, no dependencies).
 *
 * User data is only ever written with textContent or as an attribute value
 * (never innerHTML), so outputs containing markup are shown as text.
 */
"use strict";

(function () {
  // ---------------------------------------------------------------- helpers

  function $(id) { return document.getElementById(id); }

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) {
        if (k === "text") node.textContent = attrs[k];
        else if (k === "className") node.className = attrs[k];
        else node.setAttribute(k, attrs[k]);
      });
    }
    (children || []).forEach(function (c) { if (c) node.appendChild(c); });
    return node;
  }

  /** Show a message in #message; kind is "error", "info" or "ok"; action = {label, onClick}. */
  function showMessage(text, kind, action) {
    var box = $("message");
    if (!box) return;
    box.textContent = "";
    if (!text) return;
    var msg = el("div", { className: "message " + (kind || "info") });
    msg.appendChild(el("span", { text: text }));
    if (action) {
      var b = el("button", { type: "button", text: action.label });
      b.addEventListener("click", action.onClick);
      msg.appendChild(b);
    }
    box.appendChild(msg);
  }

  /** The project slug from /p/{slug}/... */
  function slugFromPath() {
    var m = window.location.pathname.match(/^\/p\/([^/]+)\//);
    return m ? decodeURIComponent(m[1]) : null;
  }

  var storage = {
    get: function (k) { try { return window.localStorage.getItem(k); } catch (e) { return null; } },
    set: function (k, v) { try { window.localStorage.setItem(k, v); } catch (e) { /* private mode */ } },
    del: function (k) { try { window.localStorage.removeItem(k); } catch (e) { /* private mode */ } }
  };
  var session = {
    get: function (k) { try { return window.sessionStorage.getItem(k); } catch (e) { return null; } },
    set: function (k, v) { try { window.sessionStorage.setItem(k, v); } catch (e) { /* private mode */ } },
    del: function (k) { try { window.sessionStorage.removeItem(k); } catch (e) { /* private mode */ } }
  };

  /**
   * The annotator's token from the vote link, kept in localStorage under key.
   *
   * Links carry it in the fragment (/p/{slug}/vote#token=...), which the
   * browser never sends to the server, a proxy or a Referer header; the query
   * string (?token=..., links made before the change) is read as a fallback.
   * Both are removed from the address bar at once.
   */
  function takeTokenFromUrl(key) {
    var url = new URL(window.location.href);
    var frag = new URLSearchParams(url.hash.replace(/^#/, ""));
    var t = frag.get("token") || url.searchParams.get("token");
    if (frag.has("token") || url.searchParams.has("token")) {
      frag.delete("token");
      url.searchParams.delete("token");
      var rest = frag.toString();
      window.history.replaceState(null, "", url.pathname + url.search + (rest ? "#" + rest : ""));
    }
    if (t) storage.set(key, t);
    return storage.get(key);
  }

  function adminToken() { return session.get("bradley.admin") || storage.get("bradley.admin"); }

  /** An HTTP error with the server's detail message. */
  function ApiError(status, detail) {
    this.status = status;
    this.detail = detail;
    this.message = detail;
  }

  /**
   * fetch + JSON. Resolves {status, body} for 2xx (body null for 204);
   * rejects ApiError for 4xx/5xx (status 0 for a network failure).
   */
  function api(method, path, body, token) {
    var headers = { "Accept": "application/json" };
    if (body !== undefined && body !== null) headers["Content-Type"] = "application/json";
    if (token) headers["Authorization"] = "Bearer " + token;
    return fetch(path, {
      method: method,
      headers: headers,
      body: body === undefined || body === null ? undefined : JSON.stringify(body),
      cache: "no-store",
      credentials: "omit"
    }).then(function (resp) {
      if (resp.status === 204) return { status: 204, body: null };
      return resp.text().then(function (raw) {
        var data = null;
        try { data = raw ? JSON.parse(raw) : null; } catch (e) { data = null; }
        if (resp.ok) return { status: resp.status, body: data };
        var detail = data && data.detail !== undefined ? data.detail : raw || resp.statusText;
        if (typeof detail !== "string") detail = JSON.stringify(detail);
        throw new ApiError(resp.status, detail);
      });
    }, function () {
      throw new ApiError(0, "The server could not be reached (network error).");
    });
  }

  function fmt(x, digits) {
    if (x === null || x === undefined || Number.isNaN(Number(x))) return "\u2013";
    var v = Number(x);
    if (digits === undefined) digits = Math.abs(v) >= 100 ? 0 : 2;
    var text = v.toFixed(digits);
    return /^-0(\.0*)?$/.test(text) ? text.slice(1) : text;  // no "-0.00"
  }

  /** A timestamp (Unix seconds, milliseconds or ISO text) as local date and time. */
  function formatTime(t) {
    if (t === null || t === undefined || t === "") return "\u2013";
    var d = typeof t === "number" ? new Date(t < 1e12 ? t * 1000 : t) : new Date(t);
    return isNaN(d.getTime()) ? String(t) : d.toLocaleString();
  }

  /** Only http(s), same-origin paths and data:image URLs are shown as images. */
  function safeImageUrl(u) {
    if (!u || typeof u !== "string") return null;
    try {
      var parsed = new URL(u, window.location.href);
      if (parsed.protocol === "http:" || parsed.protocol === "https:") return parsed.href;
      if (parsed.protocol === "data:" && /^data:image\//i.test(u)) return u;
    } catch (e) { return null; }
    return null;
  }

  // ------------------------------------------------------------------ index

  function initIndex() {
    api("GET", "/api/projects").then(function (r) {
      var list = $("projects");
      var projects = r.body || [];
      if (!projects.length) {
        showMessage("No public projects yet. An admin creates one on the Admin page.", "info");
        return;
      }
      projects.forEach(function (p) {
        var href = "/p/" + encodeURIComponent(p.slug) + "/leaderboard";
        list.appendChild(el("li", null, [
          el("h2", null, [el("a", { href: href, text: p.name || p.slug })]),
          p.description ? el("p", { text: p.description }) : null,
          el("p", { className: "muted", text: (p.n_systems || 0) + " systems \u00b7 " + (p.n_votes || 0) + " votes" })
        ]));
      });
    }, function (err) {
      showMessage("Could not load the projects: " + err.detail, "error", { label: "Retry", onClick: function () { window.location.reload(); } });
    });
  }

  // ------------------------------------------------------------------- vote

  function initVote() {
    var slug = slugFromPath();
    var base = "/api/projects/" + encodeURIComponent(slug);
    var token = takeTokenFromUrl("bradley.token." + slug);
    // a new link opened in this tab only changes the fragment, which does not reload the page
    window.addEventListener("hashchange", function () {
      if (/(^#|&)token=/.test(window.location.hash)) window.location.reload();
    });
    var lbHref = "/p/" + encodeURIComponent(slug) + "/leaderboard";
    $("nav-leaderboard").setAttribute("href", lbHref);
    $("done-leaderboard").setAttribute("href", lbHref);

    var state = {
      pair: null,        // the pair on screen
      pending: null,     // {pair_id, outcome} being submitted (retries reuse it)
      voted: false,      // the pair on screen is answered
      busy: false,       // a request is in flight
      nVotes: 0,
      remaining: null,
      advanceTimer: null
    };
    var buttons = Array.prototype.slice.call(document.querySelectorAll(".choices button"));

    if (!token) {
      showMessage("This page needs your personal vote link (it ends in #token=...). Ask the project's admin for one.", "error");
      return;
    }

    function setButtons(enabled) {
      buttons.forEach(function (b) { b.disabled = !enabled; });
    }

    function updateProgress() {
      var text = state.nVotes + " vote" + (state.nVotes === 1 ? "" : "s");
      var bar = $("progress");
      if (state.remaining !== null && state.remaining !== undefined) {
        text += " \u00b7 " + state.remaining + " left";
        var total = state.nVotes + state.remaining;
        var pct = total > 0 ? Math.round(100 * state.nVotes / total) : 100;
        bar.firstElementChild.style.width = pct + "%";
        bar.setAttribute("aria-valuemax", String(total));
        bar.setAttribute("aria-valuenow", String(state.nVotes));
        bar.classList.remove("hidden");
      } else {
        bar.classList.add("hidden");
      }
      $("progress-text").textContent = text;
    }

    function handleAuthError(err) {
      if (err.status === 401) {
        showMessage("This link is not valid (mistyped or revoked). Ask the project's admin for a new vote link.", "error");
        setButtons(false);
        return true;
      }
      return false;
    }

    function loadMe() {
      return api("GET", "/api/me", null, token).then(function (r) {
        var me = r.body || {};
        $("who").textContent = me.name ? "Signed in as " + me.name : "";
        state.nVotes = me.n_votes || 0;
        state.remaining = me.remaining === undefined ? null : me.remaining;
        updateProgress();
      }, function (err) {
        if (!handleAuthError(err)) showMessage("Could not load your progress: " + err.detail, "error");
        throw err;
      });
    }

    function showOutput(side, output) {
      var out = output || {};
      $(side + "-text").textContent = out.text || "";
      var img = $(side + "-image");
      var src = safeImageUrl(out.image_url);
      if (src) { img.src = src; img.classList.remove("hidden"); }
      else { img.removeAttribute("src"); img.classList.add("hidden"); }
      $(side + "-text").classList.toggle("hidden", !out.text);
      $(side + "-system").textContent = "";
      $(side).classList.remove("winner", "loser");
    }

    function showPair(pair) {
      state.pair = pair;
      state.voted = false;
      state.pending = null;
      $("prompt").textContent = pair.prompt || "";
      $("prompt").parentElement.classList.toggle("hidden", !pair.prompt);
      showOutput("left", pair.left);
      showOutput("right", pair.right);
      buttons.forEach(function (b) { b.classList.remove("chosen"); });
      $("reveal").classList.add("hidden");
      $("arena").classList.remove("hidden");
      $("done").classList.add("hidden");
      setButtons(true);
      document.body.setAttribute("data-pair-id", String(pair.pair_id));
    }

    function showDone() {
      state.pair = null;
      $("arena").classList.add("hidden");
      $("done").classList.remove("hidden");
      $("done-text").textContent = "You gave " + state.nVotes + " vote" + (state.nVotes === 1 ? "" : "s") + ". The leaderboard updates with every vote.";
      document.body.setAttribute("data-pair-id", "");
      state.remaining = 0;
      updateProgress();
    }

    function loadNext() {
      if (state.advanceTimer) { clearTimeout(state.advanceTimer); state.advanceTimer = null; }
      if (state.busy) return;
      state.busy = true;
      setButtons(false);
      showMessage("");
      api("GET", base + "/next", null, token).then(function (r) {
        state.busy = false;
        if (r.status === 204 || !r.body) showDone();
        else showPair(r.body);
      }, function (err) {
        state.busy = false;
        if (handleAuthError(err)) return;
        showMessage("Could not load the next pair: " + err.detail, "error", { label: "Retry", onClick: loadNext });
      });
    }

    function reveal(result, outcome) {
      state.voted = true;
      state.pending = null;
      $("left-system").textContent = result.left_system || "";
      $("right-system").textContent = result.right_system || "";
      if (outcome === "left" || outcome === "right") {
        var other = outcome === "left" ? "right" : "left";
        $(outcome).classList.add("winner");
        $(other).classList.add("loser");
      }
      var words = { left: "You preferred A", right: "You preferred B", tie: "You called it a tie", both_bad: "You found both bad" };
      $("reveal-text").textContent = words[outcome] + ": A was " + (result.left_system || "?") + ", B was " + (result.right_system || "?") + ".";
      $("reveal").classList.remove("hidden");
      $("next").focus();
      state.advanceTimer = setTimeout(loadNext, 2500);
    }

    function submit() {
      var p = state.pending;
      state.busy = true;
      setButtons(false);
      showMessage("");
      api("POST", base + "/votes", { pair_id: p.pair_id, outcome: p.outcome }, token).then(function (r) {
        state.busy = false;
        if (r.status === 201) {
          state.nVotes += 1;
          if (state.remaining !== null && state.remaining > 0) state.remaining -= 1;
        }
        updateProgress();
        reveal(r.body || {}, p.outcome);
      }, function (err) {
        state.busy = false;
        if (handleAuthError(err)) return;
        if (err.status === 409) {
          // this pair already holds a different answer (e.g. from another tab): keep that one
          state.pending = null;
          showMessage("This pair was already answered differently (perhaps in another tab); that answer is kept.", "info", { label: "Next pair", onClick: loadNext });
          return;
        }
        if (err.status === 403) {
          // e.g. this annotator's vote budget is used up: say so, then ask the server what is left
          state.pending = null;
          showMessage("The vote was not accepted: " + err.detail, "info", { label: "Continue", onClick: loadNext });
          return;
        }
        if (err.status === 404 || err.status === 410) {
          state.pending = null;
          showMessage("This pair is no longer available.", "info", { label: "Next pair", onClick: loadNext });
          return;
        }
        if (err.status >= 400 && err.status < 500 && err.status !== 408 && err.status !== 429) {
          state.pending = null;
          setButtons(true);
          showMessage("The vote was refused: " + err.detail, "error");
          return;
        }
        // network error, timeout, rate limit or server error: the same pair_id and outcome are sent again
        buttons.forEach(function (b) { b.disabled = true; });
        showMessage("Your vote was not confirmed: " + err.detail + " It is kept here; retrying sends it once.", "error", { label: "Retry", onClick: submit });
      });
    }

    function vote(outcome) {
      if (!state.pair || state.voted || state.busy || state.pending) return;
      state.pending = { pair_id: state.pair.pair_id, outcome: outcome };
      buttons.forEach(function (b) { b.classList.toggle("chosen", b.getAttribute("data-outcome") === outcome); });
      submit();
    }

    buttons.forEach(function (b) {
      b.addEventListener("click", function () { vote(b.getAttribute("data-outcome")); });
    });
    $("next").addEventListener("click", loadNext);

    var keys = { ArrowLeft: "left", ArrowRight: "right", ArrowUp: "tie", ArrowDown: "both_bad", "1": "left", "2": "tie", "3": "both_bad", "4": "right" };
    document.addEventListener("keydown", function (ev) {
      if (ev.altKey || ev.ctrlKey || ev.metaKey) return;
      var tag = (ev.target && ev.target.tagName) || "";
      if (tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT") return;
      if (keys[ev.key] && state.pair && !state.voted) {
        ev.preventDefault();
        vote(keys[ev.key]);
      } else if ((ev.key === "Enter" || ev.key === "n") && state.voted && !state.busy) {
        ev.preventDefault();
        loadNext();
      }
    });

    loadMe().then(loadNext, function () { /* message shown */ });
  }

  // ------------------------------------------------------------ leaderboard

  function initLeaderboard() {
    var slug = slugFromPath();
    var base = "/api/projects/" + encodeURIComponent(slug);
    var params = new URL(window.location.href).searchParams;
    var seconds = Math.max(1, Number(params.get("refresh")) || 5);
    $("refresh-seconds").textContent = String(seconds);
    var previous = {};
    var timer = null;

    api("GET", "/api/projects", null, adminToken()).then(function (r) {
      (r.body || []).forEach(function (p) {
        if (p.slug === slug) {
          $("project-title").textContent = (p.name || p.slug) + " \u2014 leaderboard";
          document.title = (p.name || p.slug) + " - leaderboard";
        }
      });
    }, function () { /* the title stays generic */ });

    function render(board) {
      $("n-votes").textContent = String(board.n_votes || 0);
      var rows = board.rows || [];
      $("n-systems").textContent = String(rows.length);
      $("updated-at").textContent = formatTime(board.updated_at);
      $("ci-method").textContent = board.ci_method ? " (" + board.ci_method + ")" : "";
      var lo = Infinity, hi = -Infinity;
      rows.forEach(function (r) {
        [r.ci_low, r.ci_high, r.score].forEach(function (v) {
          if (v !== null && v !== undefined && isFinite(v)) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
        });
      });
      var span = hi > lo ? hi - lo : 1;
      function pos(v) { return (100 * (v - lo) / span).toFixed(1) + "%"; }
      var tbody = $("rows");
      tbody.textContent = "";
      if (!rows.length) {
        var td = el("td", { colspan: "8", className: "muted", text: "No votes yet." });
        tbody.appendChild(el("tr", null, [td]));
      }
      var next = {};
      rows.forEach(function (r) {
        var key = r.system;
        var sig = [r.rank, fmt(r.score), r.n_votes].join("|");
        next[key] = sig;
        var bar = el("div", { className: "ci", role: "img",
          "aria-label": "interval " + fmt(r.ci_low) + " to " + fmt(r.ci_high) });
        if (isFinite(r.ci_low) && isFinite(r.ci_high) && r.ci_low !== null && r.ci_high !== null) {
          var s = el("span");
          s.style.left = pos(r.ci_low);
          s.style.width = (100 * (r.ci_high - r.ci_low) / span).toFixed(1) + "%";
          bar.appendChild(s);
        }
        if (r.score !== null && isFinite(r.score)) {
          var mark = el("i");
          mark.style.left = "calc(" + pos(r.score) + " - 1px)";
          bar.appendChild(mark);
        }
        var rankRange = (r.rank_low === undefined || r.rank_low === null) ? "\u2013"
          : (r.rank_low === r.rank_high ? String(r.rank_low) : r.rank_low + "\u2013" + r.rank_high);
        var name = el("th", { scope: "row", text: r.system });
        if (r.provisional) name.appendChild(el("span", { className: "badge", title: "few votes so far", text: "provisional" }));
        var tr = el("tr", { "data-system": r.system }, [
          el("td", { className: "num", text: String(r.rank) }),
          name,
          el("td", { className: "num", text: fmt(r.score, 2) }),
          el("td", { className: "num", text: fmt(r.ci_low, 2) + " \u2013 " + fmt(r.ci_high, 2) }),
          el("td", null, [bar]),
          el("td", { className: "num", text: fmt(r.elo, 0) }),
          el("td", { className: "num", text: rankRange }),
          el("td", { className: "num", text: String(r.n_votes) })
        ]);
        if (previous[key] !== undefined && previous[key] !== sig) tr.className = "changed";
        tbody.appendChild(tr);
      });
      previous = next;
      document.body.setAttribute("data-n-votes", String(board.n_votes || 0));
    }

    function refresh() {
      var token = adminToken();
      return api("GET", base + "/leaderboard", null, token).then(function (r) {
        showMessage("");
        render(r.body || {});
      }, function (err) {
        if (err.status === 401 || err.status === 403) {
          showMessage("This leaderboard is private: open the Admin page and enter the admin token first.", "error");
        } else if (err.status === 404) {
          showMessage("No project named \u201c" + slug + "\u201d.", "error");
        } else {
          showMessage("Could not refresh the leaderboard: " + err.detail + " (trying again)", "error");
        }
      });
    }

    function schedule() {
      if (timer) clearTimeout(timer);
      timer = null;
      if ($("auto-refresh").checked) {
        timer = setTimeout(function () {
          if (document.hidden) { schedule(); return; }
          refresh().then(schedule, schedule);
        }, seconds * 1000);
      }
    }
    $("auto-refresh").addEventListener("change", function () {
      if ($("auto-refresh").checked) refresh().then(schedule, schedule);
      else schedule();
    });
    refresh().then(schedule, schedule);
  }

  // ------------------------------------------------------------------ admin

  /** Parse CSV text (RFC 4180: quoted fields, "" escapes, newlines inside quotes) into rows. */
  function parseCsv(text) {
    var rows = [], row = [], field = "", i = 0, q = false;
    while (i < text.length) {
      var c = text[i];
      if (q) {
        if (c === '"') {
          if (text[i + 1] === '"') { field += '"'; i += 2; continue; }
          q = false; i += 1; continue;
        }
        field += c; i += 1; continue;
      }
      if (c === '"') { q = true; i += 1; continue; }
      if (c === ",") { row.push(field); field = ""; i += 1; continue; }
      if (c === "\r") { i += 1; continue; }
      if (c === "\n") { row.push(field); rows.push(row); row = []; field = ""; i += 1; continue; }
      field += c; i += 1;
    }
    if (field !== "" || row.length) { row.push(field); rows.push(row); }
    return rows.filter(function (r) { return r.length > 1 || r[0] !== ""; });
  }

  var OUTPUT_FIELDS = ["system", "prompt", "text", "image_url"];

  /** Outputs from JSON Lines (or a JSON array) or CSV text; throws Error naming the bad line. */
  function parseOutputs(text) {
    var trimmed = text.replace(/^\uFEFF/, "").trim();
    if (!trimmed) throw new Error("Nothing to add: paste or upload some outputs.");
    var items = [];
    if (trimmed[0] === "[") {
      items = JSON.parse(trimmed);
    } else if (trimmed[0] === "{") {
      trimmed.split(/\r?\n/).forEach(function (line, k) {
        if (!line.trim()) return;
        try { items.push(JSON.parse(line)); } catch (e) { throw new Error("Line " + (k + 1) + " is not valid JSON: " + e.message); }
      });
    } else {
      var rows = parseCsv(trimmed);
      var header = rows[0].map(function (h) { return h.trim().toLowerCase(); });
      if (header.indexOf("system") < 0) throw new Error("The CSV header must name a 'system' column (found: " + header.join(", ") + ").");
      rows.slice(1).forEach(function (r, k) {
        if (r.length !== header.length) throw new Error("CSV row " + (k + 2) + " has " + r.length + " fields, the header " + header.length + ".");
        var o = {};
        header.forEach(function (h, j) { if (OUTPUT_FIELDS.indexOf(h) >= 0 && r[j] !== "") o[h] = r[j]; });
        items.push(o);
      });
    }
    return items.map(function (o, k) {
      if (!o || typeof o !== "object" || !o.system) throw new Error("Output " + (k + 1) + " has no 'system'.");
      if (!o.text && !o.image_url) throw new Error("Output " + (k + 1) + " (" + o.system + ") has neither 'text' nor 'image_url'.");
      var clean = {};
      OUTPUT_FIELDS.forEach(function (f) { if (o[f] !== undefined && o[f] !== null && o[f] !== "") clean[f] = String(o[f]); });
      return clean;
    });
  }

  function initAdmin() {
    var remembered = storage.get("bradley.admin");
    if (remembered) $("remember-token").checked = true;

    function token() { return adminToken(); }
    function tokenState() {
      $("token-state").textContent = token() ? "A token is set." : "No token set.";
      if (token()) refreshSlugs();
    }
    function slug() { return $("slug").value.trim(); }
    function requireToken() {
      if (!token()) { showMessage("Enter the admin token first.", "error"); $("admin-token").focus(); return false; }
      return true;
    }
    function requireSlug() {
      if (!slug()) { showMessage("Enter the project slug first.", "error"); $("slug").focus(); return false; }
      return true;
    }
    function fail(what) {
      return function (err) {
        var hint = err.status === 401 || err.status === 403 ? " (is the admin token right?)" : "";
        showMessage(what + " failed: " + (err.detail || err.message) + hint, "error");
      };
    }
    function refreshSlugs() {
      api("GET", "/api/projects", null, token()).then(function (r) {
        var list = $("slugs");
        list.textContent = "";
        (r.body || []).forEach(function (p) { list.appendChild(el("option", { value: p.slug, text: p.name })); });
      }, function () { /* the datalist stays empty */ });
    }
    function updateLinks() {
      var s = slug();
      $("leaderboard-link").setAttribute("href", s ? "/p/" + encodeURIComponent(s) + "/leaderboard" : "#");
    }

    $("token-form").addEventListener("submit", function (ev) {
      ev.preventDefault();
      var t = $("admin-token").value.trim();
      if (!t) return;
      session.set("bradley.admin", t);
      if ($("remember-token").checked) storage.set("bradley.admin", t);
      else storage.del("bradley.admin");
      $("admin-token").value = "";
      tokenState();
      showMessage("Admin token set.", "ok");
    });
    $("forget-token").addEventListener("click", function () {
      session.del("bradley.admin");
      storage.del("bradley.admin");
      tokenState();
      showMessage("Admin token forgotten.", "ok");
    });

    $("project-form").addEventListener("submit", function (ev) {
      ev.preventDefault();
      if (!requireToken()) return;
      var body = {
        slug: $("project-slug").value.trim(),
        name: $("project-name").value.trim(),
        description: $("project-description").value.trim(),
        public_leaderboard: $("project-public").checked
      };
      api("POST", "/api/projects", body, token()).then(function () {
        showMessage("Project \u201c" + body.slug + "\u201d created. Add outputs and annotators below.", "ok");
        $("slug").value = body.slug;
        updateLinks();
        refreshSlugs();
      }, fail("Creating the project"));
    });

    $("outputs-file").addEventListener("change", function () {
      var f = $("outputs-file").files[0];
      if (!f) return;
      f.text().then(function (t) {
        $("outputs-text").value = t;
        $("outputs-state").textContent = f.name + " loaded (" + t.split(/\n/).length + " lines).";
      });
    });

    $("outputs-form").addEventListener("submit", function (ev) {
      ev.preventDefault();
      if (!requireToken() || !requireSlug()) return;
      var outputs;
      try { outputs = parseOutputs($("outputs-text").value); } catch (e) { showMessage(e.message, "error"); return; }
      var chunk = 500, added = 0, start = 0;
      var url = "/api/projects/" + encodeURIComponent(slug()) + "/outputs";
      function sendNext() {
        if (start >= outputs.length) {
          showMessage("Added " + added + " outputs to \u201c" + slug() + "\u201d.", "ok");
          $("outputs-state").textContent = "";
          return;
        }
        var part = outputs.slice(start, start + chunk);
        $("outputs-state").textContent = "sending " + (start + 1) + "\u2013" + (start + part.length) + " of " + outputs.length + "\u2026";
        api("POST", url, { outputs: part }, token()).then(function (r) {
          added += (r.body && r.body.added) || 0;
          start += part.length;
          sendNext();
        }, function (err) {
          $("outputs-state").textContent = "";
          fail("Adding outputs " + (start + 1) + "\u2013" + (start + part.length) + " (" + added + " added before)")(err);
        });
      }
      sendNext();
    });

    // ---------------------------------------------------------------- image uploads
    var IMAGE_TYPES = ["image/png", "image/jpeg", "image/webp", "image/gif"];

    /** "alpha__a cat.png" -> {system: "alpha", prompt: "a cat"}; no "__": the default system, no prompt. */
    function namesFromFile(fileName) {
      var stem = fileName.replace(/\.[^.]*$/, "");
      var cut = stem.indexOf("__");
      if (cut < 0) return { system: "", prompt: "" };
      return { system: stem.slice(0, cut).trim(), prompt: stem.slice(cut + 2).trim() };
    }

    function imageRows() {
      var files = Array.prototype.slice.call($("images-files").files || []);
      var body = $("images-table").querySelector("tbody");
      body.textContent = "";
      files.forEach(function (f, k) {
        var guess = namesFromFile(f.name);
        body.appendChild(el("tr", {}, [
          el("td", { text: f.name + (IMAGE_TYPES.indexOf(f.type) < 0 ? " (not PNG/JPEG/WebP/GIF)" : "") }),
          el("td", {}, [el("input", { type: "text", id: "image-system-" + k, value: guess.system, "aria-label": "System of " + f.name })]),
          el("td", {}, [el("input", { type: "text", id: "image-prompt-" + k, value: guess.prompt, "aria-label": "Prompt of " + f.name })])
        ]));
      });
      $("images-table").classList.toggle("hidden", files.length === 0);
      return files;
    }
    $("images-files").addEventListener("change", imageRows);

    /** POST the raw bytes of one file; resolves the server's {file_id, url, ...}. */
    function uploadImage(s, file) {
      var url = "/api/projects/" + encodeURIComponent(s) + "/files?name=" + encodeURIComponent(file.name);
      return fetch(url, {
        method: "POST", body: file, cache: "no-store", credentials: "omit",
        headers: { "Content-Type": file.type || "application/octet-stream", "Accept": "application/json", "Authorization": "Bearer " + token() }
      }).then(function (resp) {
        return resp.text().then(function (raw) {
          var data = null;
          try { data = raw ? JSON.parse(raw) : null; } catch (e) { data = null; }
          if (resp.ok) return data;
          throw new ApiError(resp.status, (data && data.detail) || raw || resp.statusText);
        });
      }, function () { throw new ApiError(0, "The server could not be reached (network error)."); });
    }

    $("images-form").addEventListener("submit", function (ev) {
      ev.preventDefault();
      if (!requireToken() || !requireSlug()) return;
      var files = Array.prototype.slice.call($("images-files").files || []);
      if (!files.length) { showMessage("Pick image files first.", "error"); return; }
      var fallback = $("images-system").value.trim();
      var meta = files.map(function (f, k) {
        var sys = ($("image-system-" + k) ? $("image-system-" + k).value.trim() : "") || fallback;
        var prompt = $("image-prompt-" + k) ? $("image-prompt-" + k).value : "";
        return { system: sys, prompt: prompt };
      });
      var missing = meta.findIndex(function (m) { return !m.system; });
      if (missing >= 0) { showMessage("No system for " + files[missing].name + ": name it system__prompt.png or fill in a system.", "error"); return; }
      var s = slug(), outputs = [], k = 0;
      function next() {
        if (k >= files.length) {
          $("images-state").textContent = "adding " + outputs.length + " outputs\u2026";
          api("POST", "/api/projects/" + encodeURIComponent(s) + "/outputs", { outputs: outputs }, token()).then(function (r) {
            $("images-state").textContent = "";
            showMessage("Uploaded " + files.length + " images and added " + ((r.body && r.body.added) || 0) + " outputs to \u201c" + s + "\u201d.", "ok");
          }, function (err) { $("images-state").textContent = ""; fail("Adding the image outputs")(err); });
          return;
        }
        $("images-state").textContent = "uploading " + (k + 1) + " of " + files.length + "\u2026";
        uploadImage(s, files[k]).then(function (info) {
          outputs.push({ system: meta[k].system, prompt: meta[k].prompt, image_url: info.url });
          k += 1;
          next();
        }, function (err) {
          $("images-state").textContent = "";
          fail("Uploading " + files[k].name + " (" + k + " uploaded before, no outputs added)")(err);
        });
      }
      next();
    });

    $("annotator-form").addEventListener("submit", function (ev) {
      ev.preventDefault();
      if (!requireToken() || !requireSlug()) return;
      var body = { name: $("annotator-name").value.trim() };
      var max = $("annotator-max").value.trim();
      if (max) body.max_votes = Number(max);
      var s = slug();
      api("POST", "/api/projects/" + encodeURIComponent(s) + "/annotators", body, token()).then(function (r) {
        var link = window.location.origin + "/p/" + encodeURIComponent(s) + "/vote#token=" + encodeURIComponent(r.body.token);
        var copy = el("button", { type: "button", text: "Copy" });
        var code = el("div", { className: "link-box mono annotator-link", text: link });
        copy.addEventListener("click", function () {
          if (navigator.clipboard) navigator.clipboard.writeText(link).then(function () { copy.textContent = "Copied"; });
        });
        var box = el("div", { className: "message ok" }, [
          el("p", { text: "Vote link for " + r.body.name + " (shown only once: send it to them now):" }),
          code,
          el("div", { className: "actions" }, [copy])
        ]);
        $("annotator-links").prepend(box);
        $("annotator-name").value = "";
        showMessage("");
      }, fail("Creating the annotator"));
    });

    function download(format) {
      if (!requireToken() || !requireSlug()) return;
      var s = slug();
      fetch("/api/projects/" + encodeURIComponent(s) + "/export?format=" + format, {
        headers: { "Authorization": "Bearer " + token() }, cache: "no-store"
      }).then(function (resp) {
        if (!resp.ok) {
          return resp.text().then(function (t) {
            var d = t; try { d = JSON.parse(t).detail; } catch (e) { /* plain text */ }
            throw new ApiError(resp.status, d);
          });
        }
        return resp.blob().then(function (blob) {
          var a = el("a", { href: URL.createObjectURL(blob), download: s + "-battles." + format });
          document.body.appendChild(a);
          a.click();
          setTimeout(function () { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
        });
      }).catch(function (err) {
        fail("The export")(err instanceof ApiError ? err : new ApiError(0, "network error"));
      });
    }
    $("export-csv").addEventListener("click", function () { download("csv"); });
    $("export-jsonl").addEventListener("click", function () { download("jsonl"); });
    $("slug").addEventListener("input", updateLinks);

    tokenState();
    if (!token()) refreshSlugs();
    updateLinks();
  }

  // ---------------------------------------------------------------- dispatch

  var pages = { index: initIndex, vote: initVote, leaderboard: initLeaderboard, admin: initAdmin };
  function start() {
    var page = document.body.getAttribute("data-page");
    if (pages[page]) pages[page]();
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();

  // exposed for the browser test of the parsers
  window.bradleyServe = { parseCsv: parseCsv, parseOutputs: parseOutputs };
})();
