/* The compare page's picker: choosing a state machine lists its jobs at once. */
"use strict";
(function () {
  const machine = document.getElementById("pick-machine");
  if (!machine) return;
  machine.addEventListener("change", () => {
    if (machine.value) machine.form.requestSubmit();
  });
})();
