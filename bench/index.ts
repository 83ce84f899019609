// Importing a file here registers it. One line per file.
export {};
import './engine.js';
