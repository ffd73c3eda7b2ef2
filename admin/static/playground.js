// Progressive enhancement only: counts the candidate lines as you type.
document.addEventListener("DOMContentLoaded", () => {
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
