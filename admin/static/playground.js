// Progressive enhancement only: counts the candidate lines as you type, and brings a result into view.
document.addEventListener("DOMContentLoaded", () => {
  // After "Rank" or "Ask" the page reloads at the top; the result (or the Ask form's error) is further down.
  // Scroll it into view and move focus to it, so screen readers read it next.
  const result = document.querySelector("[data-result]") || document.querySelector("#ask-title ~ form .field-error");
  if (result) {
    const box = result.getBoundingClientRect();
    if (box.top < 0 || box.top > window.innerHeight * 0.6) result.scrollIntoView({ block: "start" });
    if (result.tabIndex === -1) result.focus({ preventScroll: true });
  }

  const box = document.getElementById("candidates");
  const out = document.getElementById("candidates-count");
  if (!box || !out) return;
  const max = Number(box.dataset.maxLines);
  const update = () => {
    const n = box.value.split(/\r?\n/).filter((line) => line.trim()).length;
    out.textContent = `${n} / ${max} candidates`;
    out.classList.toggle("bad", n > max);
  };
  box.addEventListener("input", update);
  update();
});
