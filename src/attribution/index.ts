// Importing a method file registers it. One line per method.
import './gradient.js';
import './gradient-x-input.js';
