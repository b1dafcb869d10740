import { render } from 'preact';
import { App } from './ui/App.js';
import './app.css';

render(<App />, document.getElementById('app')!);
