/*
 * Levant Wire: progressive enhancement for the public pages. Every page works without it.
 *
 * - The donation form keeps the processing-fee figure and the submit button's wording in step
 *   with the chosen amount, fee choice and frequency: the button names what the card will be
 *   charged ("Give $51.81 monthly"). The fee is computed exactly as the server computes it
 *   (app/money.py cover_fee), by one function here, in integer minor units: no floating point
 *   near money. Without this script the button says "Give".
 * - Any form with a [data-submit] button disables it once submitted, against double gifts.
 * - A server-side error summary is focused on load, so it is announced and in view.
 * - The thank-you page's "Copy link" button copies the campaign's link (the link stays on the
 *   page, selectable, without this script).
 */
(function () {
  "use strict";

  var HAS_BIGINT = typeof BigInt === "function";
  var PROCESSING = "Processing\u2026";
  var FREQUENCY_WORDS = { one_time: "", monthly: " monthly", annual: " yearly" };
  var KNOWN_DIGITS = { USD: 2, EUR: 2, GBP: 2, ILS: 2 };

  // ---------------------------------------------------------------- money helpers

  /** Decimal places of a currency: 2 for USD, EUR, GBP and ILS; otherwise what Intl knows. */
  function minorDigits(currency, locale) {
    if (Object.prototype.hasOwnProperty.call(KNOWN_DIGITS, currency)) {
      return KNOWN_DIGITS[currency];
    }
    try {
      return new Intl.NumberFormat(locale, { style: "currency", currency: currency })
        .resolvedOptions().maximumFractionDigits;
    } catch (e) {
      return 2;
    }
  }

  function zeros(n) {
    var s = "";
    while (s.length < n) s += "0";
    return s;
  }

  /**
   * Parse what a person typed ("25", "25.50", "$1,000") into minor units, mirroring
   * app/money.py parse_amount. Returns a decimal string of digits, or null when not a usable
   * positive amount. Only string operations: split on "." and pad.
   */
  function parseMinor(text, currency, digits) {
    var cleaned = String(text || "").trim();
    ["$", "\u20ac", "\u00a3", "\u20aa", "\u00a0", " ", ","].forEach(function (symbol) {
      cleaned = cleaned.split(symbol).join("");
    });
    if (cleaned.indexOf(currency) === 0) cleaned = cleaned.slice(currency.length);
    if (cleaned.length > currency.length &&
        cleaned.slice(-currency.length) === currency) {
      cleaned = cleaned.slice(0, -currency.length);
    }
    cleaned = cleaned.trim();
    if (!/^(?:\d{1,12}(?:\.\d{0,12})?|\.\d{1,12})$/.test(cleaned)) return null;

    var parts = cleaned.split(".");
    var whole = parts[0] || "0";
    var frac = parts.length > 1 ? parts[1] : "";
    if (frac.length > digits) {
      // "25.500" is fine for USD, "25.505" is not: the server refuses over-precise input.
      if (/[^0]/.test(frac.slice(digits))) return null;
      frac = frac.slice(0, digits);
    }
    frac += zeros(digits - frac.length);
    var minor = (whole + frac).replace(/^0+/, "");
    return minor === "" ? null : minor; // zero is not an amount
  }

  /** cover_fee: extra = ceil((amount + fixed) * 10000 / (10000 - bp)) - amount, in integers. */
  function coverFee(amountMinor, bp, fixed) {
    if (HAS_BIGINT) {
      var a = BigInt(amountMinor);
      var numerator = (a + BigInt(fixed)) * BigInt(10000);
      var denominator = BigInt(10000 - bp);
      var gross = (numerator + denominator - BigInt(1)) / denominator; // ceiling division
      return (gross - a).toString();
    }
    // Without BigInt, stay exact by refusing amounts whose products could leave the safe range.
    var n = Number(amountMinor);
    var num = (n + fixed) * 10000;
    if (!Number.isSafeInteger || !Number.isSafeInteger(num)) return null;
    var den = 10000 - bp;
    var q = Math.floor(num / den);
    if (q * den < num) q += 1;
    return String(q - n);
  }

  /** The sum of two amounts in minor units (digit strings), or null if it cannot be exact. */
  function addMinor(a, b) {
    if (HAS_BIGINT) return (BigInt(a) + BigInt(b)).toString();
    var sum = Number(a) + Number(b);
    return Number.isSafeInteger && Number.isSafeInteger(sum) ? String(sum) : null;
  }

  /** "2550" with 2 digits -> "25.50"; exact, as a decimal string. */
  function toDecimalString(minor, digits) {
    if (digits === 0) return minor;
    var padded = zeros(Math.max(0, digits + 1 - minor.length)) + minor;
    return padded.slice(0, -digits) + "." + padded.slice(-digits);
  }

  function formatMoney(minor, currency, locale, digits, whole) {
    var decimal = toDecimalString(minor, digits);
    var options = { style: "currency", currency: currency };
    // Like the server's money(whole=True): "$25", not "$25.00"; but "$25.50" stays.
    if (whole && digits > 0 && /\.0+$/.test(decimal)) {
      options.minimumFractionDigits = 0;
      options.maximumFractionDigits = 0;
    }
    try {
      var formatter = new Intl.NumberFormat(locale || undefined, options);
      // Modern engines format a decimal string exactly; older ones read it as a Number, which
      // is exact enough for any amount a person gives.
      return formatter.format(decimal);
    } catch (e) {
      return currency + " " + decimal;
    }
  }

  // ---------------------------------------------------------------- the donation form

  function enhanceDonationForm(form) {
    var currency = form.getAttribute("data-currency") || "USD";
    var locale = form.getAttribute("data-locale") || undefined;
    var bp = parseInt(form.getAttribute("data-fee-bp"), 10);
    var fixed = parseInt(form.getAttribute("data-fee-fixed"), 10);
    var feeKnown = isFinite(bp) && isFinite(fixed) && bp >= 0 && bp < 10000 && fixed >= 0;
    var digits = minorDigits(currency, locale);

    var feeEl = form.querySelector("[data-fee-amount]");
    var submit = form.querySelector("[data-submit]");
    var coverBox = form.querySelector('input[name="cover_fee"]');
    var other = form.querySelector('[name="other_amount"]');
    var otherRadio = form.querySelector('input[name="amount_choice"][value="other"]');

    // With no valid amount, show the formula rather than a stale figure.
    var originalFee = form.getAttribute("data-fee-formula") || (feeEl ? feeEl.textContent : "");
    var originalSubmit = submit ? submit.textContent : "";

    function checked(name) {
      var input = form.querySelector('input[name="' + name + '"]:checked');
      return input ? input.value : null;
    }

    /** The selected amount in minor units as a digit string, or null. */
    function selectedAmount() {
      var choice = checked("amount_choice");
      if (choice === null) return null;
      if (choice === "other") {
        return other ? parseMinor(other.value, currency, digits) : null;
      }
      var radio = form.querySelector('input[name="amount_choice"]:checked');
      var value = radio.getAttribute("data-amount") || radio.value;
      return /^\d+$/.test(value) && /[1-9]/.test(value) ? value.replace(/^0+/, "") : null;
    }

    function update() {
      var amount = selectedAmount();
      var fee = amount !== null && feeKnown ? coverFee(amount, bp, fixed) : null;

      if (feeEl) {
        feeEl.textContent = fee !== null ? formatMoney(fee, currency, locale, digits, false)
                                         : originalFee;
      }

      if (submit && !submit.disabled) {
        // What the card will be charged: the gift, plus the fee when the donor covers it.
        var total = amount;
        if (amount !== null && coverBox && coverBox.checked) {
          total = fee !== null ? addMinor(amount, fee) : null;
        }
        var word = FREQUENCY_WORDS[checked("frequency")];
        submit.textContent = total !== null && word !== undefined
          ? "Give " + formatMoney(total, currency, locale, digits, false) + word
          : originalSubmit;
      }
    }

    // Focusing the box chooses "Other". Someone merely tabbing through it, though, has not
    // changed their mind: if they leave it empty, give them back the amount they had chosen.
    var chosenBeforeFocus = null;

    function chooseOther(event) {
      if (otherRadio && !otherRadio.checked) {
        if (event && event.type === "focus") {
          chosenBeforeFocus = form.querySelector('input[name="amount_choice"]:checked');
        }
        otherRadio.checked = true;
      }
      if (event && event.type === "input") chosenBeforeFocus = null;
      update();
    }

    function leaveOther(event) {
      var restored = chosenBeforeFocus;
      chosenBeforeFocus = null;
      if (!restored || !otherRadio || !otherRadio.checked || other.value.trim()) return;
      restored.checked = true;
      update();
      // Shift+Tab back into the amounts would land on "Other", chosen a moment ago: land on the
      // amount that is chosen again instead.
      var next = event && event.relatedTarget;
      if (next && next.name === "amount_choice" && next !== restored) {
        window.setTimeout(function () { restored.focus(); }, 0);
      }
    }

    if (other) {
      other.addEventListener("focus", chooseOther);
      other.addEventListener("input", chooseOther);
      other.addEventListener("blur", leaveOther);
    }

    // A pointer click on the "Other" tile takes the person straight to the box to type in.
    // (Arrow keys also fire click, with detail 0: those must not steal focus from the radios.)
    if (otherRadio && other) {
      otherRadio.addEventListener("click", function (event) {
        if (event.detail > 0) other.focus();
      });
    }

    form.addEventListener("change", update);
    form.addEventListener("input", update);
    form.updateGift = update;
    update();
  }

  // ---------------------------------------------------------------- double-submit guard

  function guardSubmit(form) {
    var button = form.querySelector("[data-submit]");
    if (!button) return;

    form.addEventListener("submit", function (event) {
      // Let the browser take the form's data first; a disabled button is not submitted, and
      // disabling it synchronously could cancel the submission in some engines.
      window.setTimeout(function () {
        if (event.defaultPrevented) return;
        if (!button.hasAttribute("data-original-text")) {
          button.setAttribute("data-original-text", button.textContent);
        }
        button.disabled = true;
        button.setAttribute("aria-disabled", "true");
        button.textContent = PROCESSING;
      }, 0);
    });
  }

  // Coming back with the Back button: from the back/forward cache the page is exactly as it was
  // left, its button still disabled, so give it back; from a reload, the browser refills the
  // fields only after our first update, so bring the fee and the button in step again.
  window.addEventListener("pageshow", function (event) {
    if (event.persisted) {
      var buttons = document.querySelectorAll("[data-submit][data-original-text]");
      Array.prototype.forEach.call(buttons, function (button) {
        button.disabled = false;
        button.removeAttribute("aria-disabled");
        button.textContent = button.getAttribute("data-original-text");
        button.removeAttribute("data-original-text");
      });
    }
    Array.prototype.forEach.call(document.querySelectorAll("form.donation-form"), function (form) {
      if (typeof form.updateGift === "function") form.updateGift();
    });
  });

  // ---------------------------------------------------------------- error summary

  function enhanceErrorSummary(summary) {
    // Links point at a field's id; for a group of radios that id may be on the fieldset, or on
    // nothing at all. Focus the first control of the field either way.
    summary.addEventListener("click", function (event) {
      var link = event.target.closest ? event.target.closest('a[href^="#"]') : null;
      if (!link) return;
      var id = decodeURIComponent(link.getAttribute("href").slice(1));
      var target = document.getElementById(id);
      var control = null;
      if (target && /^(INPUT|SELECT|TEXTAREA|BUTTON)$/.test(target.tagName)) {
        control = target;
      } else {
        control = (target && target.querySelector("input:not([type=hidden]), select, textarea")) ||
          document.querySelector('[name="' + id.replace(/"/g, "") + '"]:not([type=hidden])');
      }
      if (!control) return;
      event.preventDefault();
      var group = control.closest ? control.closest("fieldset, .field") : null;
      var checkedInGroup = control.type === "radio" && control.form
        ? control.form.querySelector('input[name="' + control.name + '"]:checked') : null;
      (checkedInGroup || control).focus({ preventScroll: true });
      (group || control).scrollIntoView({ block: "start" });
    });
    summary.focus();
  }

  // ---------------------------------------------------------------- sticky give panel

  // On a wide screen the give panel is sticky (see app.css). When it is taller than the window,
  // sticking by its top would hide the button until the letter ends; stick it by its bottom
  // instead, so the reader can always scroll to the button.
  function fitStickyPanel(panel) {
    var GAP = 24;
    function fit() {
      var sticky = window.getComputedStyle(panel).position === "sticky";
      var overflow = panel.offsetHeight + 2 * GAP - window.innerHeight;
      panel.style.top = sticky && overflow > 0 ? (GAP - overflow) + "px" : "";
    }
    fit();
    window.addEventListener("resize", fit);
    if (typeof ResizeObserver === "function") {
      new ResizeObserver(fit).observe(panel);
    } else {
      panel.addEventListener("toggle", fit, true);
    }
  }

  // ---------------------------------------------------------------- copy a link

  function enhanceCopyLink(box) {
    var source = box.querySelector("[data-copy-source]");
    var button = box.querySelector("[data-copy-button]");
    var status = box.querySelector("[data-copy-status]");
    if (!source || !button) return;

    function say(text) {
      if (status) status.textContent = text;
    }

    // The old way, where the Clipboard API is missing or refused (a page not on https).
    function copyBySelection() {
      source.focus();
      source.select();
      var copied = false;
      try {
        copied = document.execCommand("copy");
      } catch (e) {
        copied = false;
      }
      say(copied ? "Link copied." : "The link is selected: copy it from there.");
    }

    button.addEventListener("click", function () {
      say("");
      if (navigator.clipboard && typeof navigator.clipboard.writeText === "function") {
        navigator.clipboard.writeText(source.value).then(function () {
          say("Link copied.");
        }, copyBySelection);
      } else {
        copyBySelection();
      }
    });
    button.hidden = false;
  }

  // ---------------------------------------------------------------- start

  function init() {
    Array.prototype.forEach.call(document.querySelectorAll("form.donation-form"),
                                 enhanceDonationForm);
    Array.prototype.forEach.call(document.querySelectorAll("form"), guardSubmit);
    Array.prototype.forEach.call(document.querySelectorAll(".give-panel"), fitStickyPanel);
    Array.prototype.forEach.call(document.querySelectorAll("[data-copy-link]"), enhanceCopyLink);
    var summary = document.querySelector("[data-error-summary]");
    if (summary) enhanceErrorSummary(summary);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
