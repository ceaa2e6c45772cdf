// Loket kiosk UI: progressive enhancement only. Every page works without
// this file; with it, fields are checked as you type, the citizen screens
// reset themselves when left alone, and the staff console's sync
// indicator stays current. No request goes anywhere but this kiosk.
"use strict";

(function () {
  var body = document.body;
  var lang = body.getAttribute("data-lang") === "en" ? "en" : "id";
  function t(id, en) { return lang === "en" ? en : id; }

  // ---------------------------------------------------------------- idle timeout
  // Clears every field, both storages and the language choice, then shows
  // the start screen, replacing this page in the history.
  function clearPersonal() {
    var fields = document.querySelectorAll("input, textarea, select");
    for (var i = 0; i < fields.length; i++) {
      var f = fields[i];
      if (f.type === "hidden" || f.type === "text" || f.type === "password" || f.tagName === "TEXTAREA") { f.value = ""; }
    }
    var forms = document.querySelectorAll("form");
    for (var j = 0; j < forms.length; j++) { forms[j].reset(); }
    var personal = document.querySelectorAll("main");
    for (var k = 0; k < personal.length; k++) { personal[k].textContent = ""; }
    try { window.sessionStorage.clear(); window.localStorage.clear(); } catch (e) { /* storage disabled */ }
  }

  var idleSeconds = parseInt(body.getAttribute("data-idle-seconds") || "0", 10);
  if (idleSeconds > 0) {
    var warning = document.getElementById("idle-warning");
    var warnAfter = Math.max(idleSeconds - 15, Math.floor(idleSeconds * 2 / 3)) * 1000;
    var warnTimer = 0, resetTimer = 0, countTimer = 0, deadline = 0;
    var count = document.getElementById("idle-count");
    var atRest = location.pathname === "/" && lang === "id";
    var expire = function () {
      clearPersonal();
      location.replace("/mulai-ulang");
    };
    // The seconds left, counted down on the warning (changed once a
    // second, so a screen reader is not told the same number again).
    var tick = function () {
      var left = String(Math.max(0, Math.ceil((deadline - Date.now()) / 1000)));
      if (count && count.textContent !== left) { count.textContent = left; }
    };
    var arm = function () {
      clearTimeout(warnTimer); clearTimeout(resetTimer); clearInterval(countTimer);
      if (warning) { warning.hidden = true; }
      if (atRest) { return; }
      deadline = Date.now() + idleSeconds * 1000;
      warnTimer = setTimeout(function () {
        if (warning) { tick(); warning.hidden = false; countTimer = setInterval(tick, 250); }
      }, warnAfter);
      resetTimer = setTimeout(expire, idleSeconds * 1000);
    };
    ["pointerdown", "keydown", "input", "touchstart", "wheel"].forEach(function (ev) {
      document.addEventListener(ev, arm, { passive: true, capture: true });
    });
    var stay = document.getElementById("idle-stay");
    if (stay) { stay.addEventListener("click", arm); }
    arm();
    // A page restored from the back/forward cache must not show what the
    // previous citizen typed.
    window.addEventListener("pageshow", function (e) {
      if (e.persisted) { clearPersonal(); location.replace("/mulai-ulang"); }
    });
  }

  // A staff console left alone logs itself out (the form carries its
  // CSRF token, so this is the same logout as the button).
  var staffIdle = parseInt(body.getAttribute("data-staff-idle-seconds") || "0", 10);
  var logoutForm = document.getElementById("logout-form");
  if (staffIdle > 0 && logoutForm) {
    var staffTimer = 0;
    var staffArm = function () {
      clearTimeout(staffTimer);
      staffTimer = setTimeout(function () {
        var reason = document.createElement("input");
        reason.type = "hidden"; reason.name = "reason"; reason.value = "idle";
        logoutForm.appendChild(reason);
        logoutForm.submit();
      }, staffIdle * 1000);
    };
    ["pointerdown", "keydown", "input", "wheel"].forEach(function (ev) {
      document.addEventListener(ev, staffArm, { passive: true, capture: true });
    });
    staffArm();
  }

  // ---------------------------------------------------------------- validation
  var MAX_DAY = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

  function checkNik(v, final) {
    if (v === "") { return final ? t("NIK wajib diisi.", "Please enter your NIK.") : ""; }
    if (!/^[0-9]*$/.test(v)) { return t("NIK hanya berisi angka.", "The NIK has digits only."); }
    if (v.length < 16) {
      return final ? t("NIK harus 16 angka; baru " + v.length + ".", "The NIK has 16 digits; you typed " + v.length + ".") : "";
    }
    if (v.length > 16) { return t("NIK harus 16 angka.", "The NIK has 16 digits."); }
    var n = function (i) { return parseInt(v.substr(i, 2), 10); };
    if (n(0) < 11 || n(2) === 0 || n(4) === 0) { return t("Kode wilayah pada NIK tidak sah.", "The region code in this NIK is not valid."); }
    var dayRaw = n(6), day = dayRaw > 40 ? dayRaw - 40 : dayRaw, month = n(8);
    if (month < 1 || month > 12 || day === 0 || day > MAX_DAY[month - 1] || (dayRaw >= 32 && dayRaw <= 40)) {
      return t("Tanggal lahir pada NIK tidak sah.", "The date of birth in this NIK is not valid.");
    }
    if (v.substr(12) === "0000") { return t("Nomor urut pada NIK tidak sah.", "The serial number in this NIK is not valid."); }
    return "";
  }

  function checkName(v, final) {
    var s = v.trim();
    if (s === "") { return final ? t("Nama wajib diisi.", "Please enter your name.") : ""; }
    if (s.length > 100) { return t("Nama terlalu panjang.", "The name is too long."); }
    if (!/^[\p{L}\p{M} .,'-]+$/u.test(s) || !/\p{L}/u.test(s)) {
      return t("Nama hanya boleh berisi huruf, spasi, titik, koma, tanda petik dan tanda hubung.",
               "A name may contain letters, spaces, dots, commas, apostrophes and hyphens only.");
    }
    return "";
  }

  function checkPhone(v, final) {
    var s = v.replace(/[ .-]/g, "");
    if (s === "") { return ""; }
    var national = s.indexOf("+62") === 0 ? s.substr(3) : s.indexOf("62") === 0 ? s.substr(2) : s.indexOf("0") === 0 ? s.substr(1) : null;
    var ok = national !== null && /^8[0-9]{8,11}$/.test(national);
    if (ok) { return ""; }
    if (!/^\+?[0-9]*$/.test(s)) { return t("Nomor HP hanya berisi angka.", "A mobile number has digits only."); }
    return final ? t("Nomor HP tidak sah. Contoh: 0812 3456 7890.", "Not a valid mobile number. E.g. 0812 3456 7890.") : "";
  }

  var checks = { name: checkName, nik: checkNik, phone: checkPhone };

  function validate(input, final) {
    var check = checks[input.getAttribute("data-validate")];
    if (!check) { return true; }
    var msg = check(input.value, final);
    var err = document.getElementById(input.id + "-error");
    if (err) { err.textContent = msg; }
    var field = input.closest(".field");
    input.setAttribute("aria-invalid", msg ? "true" : "false");
    if (field) {
      field.classList.toggle("invalid", !!msg);
      field.classList.toggle("valid", !msg && input.value.trim() !== "" && final);
    }
    return !msg;
  }

  var inputs = document.querySelectorAll("[data-validate]");
  for (var i = 0; i < inputs.length; i++) {
    (function (input) {
      input.addEventListener("input", function () {
        if (input.getAttribute("data-validate") === "nik") {
          var digits = input.value.replace(/[^0-9]/g, "");
          if (digits !== input.value && /^[0-9 ]*$/.test(input.value)) { input.value = digits; }
        }
        validate(input, false);
      });
      input.addEventListener("blur", function () { validate(input, true); });
    })(inputs[i]);
  }

  var fileForm = document.getElementById("file-form");
  if (fileForm) {
    fileForm.addEventListener("submit", function (e) {
      var first = null;
      var fields = fileForm.querySelectorAll("[data-validate]");
      for (var i = 0; i < fields.length; i++) {
        if (!validate(fields[i], true) && !first) { first = fields[i]; }
      }
      if (first) { e.preventDefault(); first.focus(); }
    });
  }

  // One tap files once: the button is disabled after the form is sent
  // (the server's idempotency key covers a second tap anyway).
  var once = document.querySelectorAll("[data-once]");
  for (var o = 0; o < once.length; o++) {
    (function (button) {
      button.form && button.form.addEventListener("submit", function (e) {
        if (e.submitter === button) { setTimeout(function () { button.disabled = true; }, 0); }
      });
    })(once[o]);
  }

  // The action panel: the note is required where the citizen will read it
  // as the reason (the kiosk refuses such a step without one anyway).
  var actionForm = document.getElementById("action-form");
  var actionNote = document.getElementById("action-note");
  if (actionForm && actionNote) {
    var needReason = function () {
      var chosen = actionForm.querySelector("input[name=to]:checked");
      actionNote.required = !!chosen && chosen.getAttribute("data-reason") === "true";
    };
    actionForm.addEventListener("change", needReason);
    needReason();
  }

  var print = document.querySelector("[data-print]");
  if (print) { print.addEventListener("click", function () { window.print(); }); }

  // ---------------------------------------------------------------- sync indicator
  var indicator = document.getElementById("sync-indicator");
  if (indicator) {
    var text = document.getElementById("sync-text");
    var last = document.getElementById("sync-last");
    var clock = function (iso) { return iso ? iso.substr(11, 5) : null; };
    var refresh = function () {
      fetch("/healthz", { cache: "no-store", credentials: "same-origin" })
        .then(function (r) { return r.json(); })
        .then(function (h) {
          var pending = h.pending_changes, state, msg;
          if (!h.enrolled) {
            state = "unenrolled"; msg = t("Belum terhubung ke server pusat", "Not enrolled with the central server");
          } else if (h.update_needed) {
            state = "update";
            msg = t("Kiosk perlu diperbarui — " + pending + " perubahan menunggu, layanan tetap berjalan",
                    "Kiosk needs an update — " + pending + " changes waiting, service goes on");
          } else if (h.offline_since) {
            state = "offline";
            msg = t("Luring sejak " + clock(h.offline_since) + " — " + pending + " perubahan menunggu",
                    "Offline since " + clock(h.offline_since) + " — " + pending + " changes waiting");
          } else if (h.server_reachable && h.last_sync_error) {
            state = "error";
            msg = t("Sinkron gagal — " + pending + " perubahan menunggu", "Sync failed — " + pending + " changes waiting");
          } else if (h.sync_attempts === 0) {
            state = "connecting"; msg = t("Menghubungkan…", "Connecting…");
          } else if (pending > 0) {
            state = "online";
            msg = t("Daring — " + pending + " perubahan sedang dikirim", "Online — sending " + pending + " changes");
          } else {
            state = "online"; msg = t("Daring — semua tersinkron", "Online — all synced");
          }
          indicator.setAttribute("data-state", state);
          indicator.setAttribute("data-pending", String(pending));
          text.textContent = msg;
          last.textContent = t("Sinkron terakhir: ", "Last sync: ") + (clock(h.last_sync_ok_at) || t("belum pernah", "never"));
        })
        .catch(function () { /* the kiosk itself is restarting; try again */ });
    };
    setInterval(refresh, 2000);
  }
})();
