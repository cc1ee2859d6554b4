/* Schema page: each presence bar's width from its data-percent, set through the CSSOM (the
   Content-Security-Policy refuses style="" attributes). */
"use strict";
document.querySelectorAll(".presence-bar[data-percent]").forEach((bar) => {
  const percent = Math.max(0, Math.min(100, Number(bar.dataset.percent) || 0));
  bar.style.width = percent + "%";
});
