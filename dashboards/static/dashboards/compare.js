/* The compare page's picker: choosing a state machine lists its jobs at once; a job's start in
   its option's text is in the zone the user chose (the server writes UTC). */
"use strict";
(function () {
  const clock = window.edobsClock;
  document.querySelectorAll("option[data-start][data-wall-text]").forEach((option) => {
    const wall = clock.format(option.dataset.start, false);
    if (wall) option.textContent = option.textContent.replace(option.dataset.wallText, wall);
  });
  const machine = document.getElementById("pick-machine");
  if (!machine) return;
  machine.addEventListener("change", () => {
    if (machine.value) machine.form.requestSubmit();
  });
})();
