/* The last script of every page: marks <html data-ready> once the page's own scripts ran, so
   that tests wait for it instead of sleeping. */
"use strict";
document.documentElement.dataset.ready = "1";
