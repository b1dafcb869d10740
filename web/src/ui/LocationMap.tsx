import { createContext } from 'preact';
import { useContext, useEffect, useRef, useState } from 'preact/hooks';
import type { Map as LeafletMap } from 'leaflet';
import 'leaflet/dist/leaflet.css';
import markerIcon from 'leaflet/dist/images/marker-icon.png';
import markerIcon2x from 'leaflet/dist/images/marker-icon-2x.png';
import markerShadow from 'leaflet/dist/images/marker-shadow.png';
import { osmLink } from '../format.js';

/** The node's tile server (GET /v1/web/config `map`); undefined when it has none (`PARLEY_MAP_TILES=off`). */
export interface MapTiles { tiles: string; attribution: string }
export const MapContext = createContext<MapTiles | undefined>(undefined);

/** Street level: a 240x160 box shows a few blocks around the pin. */
const MAP_ZOOM = 15;

/** Leaflet itself (150 KB) loads with the first map the page draws: a chat list with no location needs none of it. */
let leaflet: Promise<typeof import('leaflet')> | undefined;
// Leaflet's package is CommonJS to the bundler: a dynamic import's namespace holds it as `default`.
const loadLeaflet = () => (leaflet ??= import('leaflet').then((m) => (typeof m.map === 'function' ? m : (m as unknown as { default: typeof m }).default)));

type Tiles = 'waiting' | 'shown' | 'failed';

/**
 * A location: a small still map when the node has a tile server, and always the plain link under it (which
 * needs no network to show). The box has its size before any tile arrives, so the timeline never jumps; the
 * map is made when the box first comes near the view and removed when the row unmounts (the timeline is
 * windowed: rows mount and unmount as it moves). It takes no wheel, drag or key: scrolling the chat over it scrolls the chat. A click opens the
 * full map, as the link below does for the keyboard.
 */
export function Location({ lat, lng, name }: { lat: number; lng: number; name: string }) {
  const tiles = useContext(MapContext);
  const href = osmLink(lat, lng);
  const coords = `${lat.toFixed(5)}, ${lng.toFixed(5)}`;
  return (
    <figure class="location">
      {tiles && <MapBox tiles={tiles} lat={lat} lng={lng} name={name} href={href} coords={coords} />}
      <figcaption>📍 <a href={href} target="_blank" rel="noopener noreferrer">{name} ({coords})</a></figcaption>
    </figure>
  );
}

function MapBox({ tiles, lat, lng, name, href, coords }: { tiles: MapTiles; lat: number; lng: number; name: string; href: string; coords: string }) {
  const host = useRef<HTMLDivElement>(null);
  const [state, setState] = useState<Tiles>('waiting');
  useEffect(() => {
    const el = host.current;
    if (!el) return;
    let live = true;
    let map: LeafletMap | undefined;
    // Made when the box comes within 200px of the chat's scrolled view (the page's, outside a chat).
    const near = new IntersectionObserver((entries) => {
      if (!live || map || !entries.some((e) => e.isIntersecting)) return;
      near.disconnect();
      void loadLeaflet().then((L) => {
        if (!live) return; // the row went while Leaflet loaded
        map = L.map(el, {
          dragging: false, touchZoom: false, doubleClickZoom: false, scrollWheelZoom: false, boxZoom: false,
          keyboard: false, zoomControl: false,
        }).setView([lat, lng], MAP_ZOOM);
        map.attributionControl.setPrefix(false);
        let loaded = false;
        // The page sends no Referer (referrer-policy: no-referrer), but OpenStreetMap's tile policy asks for one:
        // tiles alone send this site's origin, never a path, and nothing over plain http from an https page.
        L.tileLayer(tiles.tiles, { attribution: tiles.attribution, referrerPolicy: 'strict-origin' })
          .on('tileload', () => { loaded = true; if (live) setState('shown'); })
          // `load` comes when every tile in view has answered: none loaded means no map (offline, refused).
          .on('load', () => { if (live && !loaded) setState('failed'); })
          .addTo(map);
        // Leaflet finds its default pin by a URL in its CSS, with the file names it ships: the bundle's are hashed.
        const pin = L.icon({ iconUrl: markerIcon, iconRetinaUrl: markerIcon2x, shadowUrl: markerShadow, iconSize: [25, 41], iconAnchor: [12, 41], shadowSize: [41, 41] });
        L.marker([lat, lng], { icon: pin, interactive: false, keyboard: false, alt: '' }).addTo(map);
        map.on('click', () => window.open(href, '_blank', 'noopener,noreferrer'));
      }, () => { if (live) setState('failed'); });
    }, { root: el.closest('[role="log"]'), rootMargin: '200px' });
    near.observe(el);
    return () => { live = false; near.disconnect(); map?.remove(); };
  }, [tiles, lat, lng, href]);
  return (
    <div class={`map-box ${state}`}>
      <p class="map-fallback">{state === 'failed' && <>Map unavailable<br /></>}📍 {coords}</p>
      {/* Leaflet owns this element's classes and children: nothing here changes after the first render. */}
      <div class="map" ref={host} role="img" aria-label={`Map of ${name}`} title="Open in OpenStreetMap" />
    </div>
  );
}
