// Progressive enhancement only: every page works without this file.
document.addEventListener("click", (event) => {
  const target = event.target.closest("[data-confirm]");
  if (target && !window.confirm(target.dataset.confirm)) event.preventDefault();
  // "Back" on an error page returns to the page before it when there is one (the link's target otherwise).
  if (event.target.closest("[data-back]") && window.history.length > 1) {
    event.preventDefault();
    window.history.back();
  }
});
