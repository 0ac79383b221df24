"""Vector features as the Qt-free analyses take them: ids, values, geometries in the raster CRS."""

from qgis.core import QgsCoordinateTransform, QgsWkbTypes


def features_in_crs(source, crs, context, field_name=None):
    """[(feature id, value of field_name or None, (x, y) for a single point, else WKT)] of a
    feature source, transformed into `crs`; features without geometry are left out."""
    transform = QgsCoordinateTransform(source.sourceCrs(), crs, context.transformContext())
    found = []
    for feature in source.getFeatures():
        geometry = feature.geometry()
        if geometry.isEmpty():
            continue
        geometry.transform(transform)
        value = feature[field_name] if field_name else None
        if value is not None and hasattr(value, "isNull") and value.isNull():  # a NULL QVariant
            value = None
        if geometry.type() == QgsWkbTypes.GeometryType.PointGeometry and not geometry.isMultipart():
            point = geometry.asPoint()
            found.append((feature.id(), value, (point.x(), point.y())))
        else:
            found.append((feature.id(), value, geometry.asWkt()))
    return found


def split_points_polygons(features):
    """(points [(id, (x, y))], polygons [(id, wkt)]) of features_in_crs's list."""
    points = [(fid, g) for fid, _, g in features if isinstance(g, tuple)]
    polygons = [(fid, g) for fid, _, g in features if not isinstance(g, tuple)]
    return points, polygons
