import { render } from 'preact';
import 'uplot/dist/uPlot.min.css';
import './ops.css';
import { Console } from './ui/Console.js';

render(<Console />, document.getElementById('app')!);
